//! Pure mapping from Discord payloads (serenity's model types) to gateway calls.
//!
//! Nothing here performs I/O: the handler fetches what it needs (channel kind, thread history,
//! attachment bytes) and these functions decide the [`Scope`], [`Actor`], [`Question`] and
//! [`Upload`] the core sees, which slash command was invoked, and whether a message is for the bot.

pub use footnote_adapter::render::human_bytes;
use footnote_adapter::{Actor, IngestError, Origin, Question, Role, Scope, Turn, Upload};
use serenity::all::{
    Attachment, ChannelId, ChannelType, CommandDataOptionValue, CommandInteraction, CommandOptionType, CreateCommand,
    CreateCommandOption, GuildId, Message, MessageId, MessageType, Permissions, UserId,
};

/// The platform name the core sees in every [`Scope`].
pub const PLATFORM: &str = "discord";
/// Discord's limit on a thread name, in characters.
pub const THREAD_NAME_LIMIT: usize = 100;
/// Discord's limit on a string option of a slash command.
const QUESTION_MAX_LENGTH: u16 = 2000;

/// A slash command with its options read; `/ingest` carries the attachment, `None` when Discord
/// did not resolve it.
pub type Command = footnote_adapter::Command<Option<Box<Attachment>>>;

/// What a chat message asks the bot to do.
#[derive(Clone, Debug)]
pub enum Inbound {
    /// Answer this question.
    Ask(String),
    /// Store these attachments in the channel's collection.
    Ingest(Vec<Attachment>),
    /// The bot was mentioned with nothing else: explain how to use it.
    Help,
}

/// True for the channel types that are threads.
pub fn is_thread(kind: ChannelType) -> bool {
    matches!(kind, ChannelType::PublicThread | ChannelType::PrivateThread | ChannelType::NewsThread)
}

/// The reply to a file posted in a private thread. A thread reads and writes its parent
/// channel's collection, which everyone in that channel can search: a file posted among the few
/// members of a private thread would become visible to all of them.
pub const PRIVATE_THREAD_INGEST: &str = "I don't add files posted in a private thread: they would join the \
    documents of the whole channel it belongs to, where everyone could find them. Nothing was added. Post the file \
    in the channel itself if everyone there may read it.";

/// Whether a file may be added from a channel of this kind ([`PRIVATE_THREAD_INGEST`] if not).
pub fn ingest_allowed_in(kind: Option<ChannelType>) -> Result<(), &'static str> {
    if kind == Some(ChannelType::PrivateThread) { Err(PRIVATE_THREAD_INGEST) } else { Ok(()) }
}

/// The name Discord gives the file it makes of a message too long to send as text.
const LONG_PASTE_NAME: &str = "message.txt";

/// The scope of a channel: in a thread, `room` is the parent channel and `thread` the thread; in a
/// DM (`guild` is `None`), `space` is empty and `room` is the DM channel.
pub fn scope(guild: Option<GuildId>, channel: ChannelId, thread_parent: Option<ChannelId>) -> Scope {
    let (room, thread) = match thread_parent {
        Some(parent) => (parent, Some(channel.to_string())),
        None => (channel, None),
    };
    Scope { platform: PLATFORM.to_owned(), space: guild.map(|g| g.to_string()), room: room.to_string(), thread }
}

/// The scope of a slash command, using the partial channel Discord sends with the interaction.
pub fn command_scope(cmd: &CommandInteraction) -> Scope {
    let parent = cmd.channel.as_ref().filter(|c| is_thread(c.kind)).and_then(|c| c.parent_id);
    scope(cmd.guild_id, cmd.channel_id, parent)
}

/// True when the member owns the guild, or one of its roles (the guild id is the `@everyone`
/// role) grants ADMINISTRATOR.
pub fn is_admin(user: UserId, owner: UserId, role_permissions: impl IntoIterator<Item = Permissions>) -> bool {
    user == owner || role_permissions.into_iter().any(|p| p.administrator())
}

/// The actor of a slash command. Discord sends the member's computed permissions with a guild
/// interaction; `owner` is the guild owner when the cache knows it.
pub fn command_actor(cmd: &CommandInteraction, owner: Option<UserId>) -> Actor {
    let user = &cmd.user;
    match &cmd.member {
        Some(member) => Actor {
            user_id: user.id.to_string(),
            display_name: Some(member.display_name().to_owned()),
            roles: member.roles.iter().map(ToString::to_string).collect(),
            is_owner: owner == Some(user.id) || member.permissions.is_some_and(|p| p.administrator()),
        },
        None => Actor {
            user_id: user.id.to_string(),
            display_name: Some(user.display_name().to_owned()),
            roles: Vec::new(),
            is_owner: false,
        },
    }
}

/// The actor of a message; `admin` comes from the cache (see [`is_admin`]), false when unknown.
pub fn message_actor(msg: &Message, admin: bool) -> Actor {
    let member = msg.member.as_deref();
    let display = member.and_then(|m| m.nick.clone()).unwrap_or_else(|| msg.author.display_name().to_owned());
    Actor {
        user_id: msg.author.id.to_string(),
        display_name: Some(display),
        roles: member.map(|m| m.roles.iter().map(ToString::to_string).collect()).unwrap_or_default(),
        is_owner: admin,
    }
}

/// Reads which slash command was invoked and its options.
pub fn parse_command(cmd: &CommandInteraction) -> Command {
    let option = |name: &str| cmd.data.options.iter().find(|o| o.name == name).map(|o| &o.value);
    let text = |name: &str| match option(name) {
        Some(CommandDataOptionValue::String(s)) => s.trim().to_owned(),
        _ => String::new(),
    };
    let name = cmd.data.name.as_str();
    let args = match name {
        "ask" => text("question"),
        "forget" => text("id"),
        _ => String::new(),
    };
    footnote_adapter::Command::parse(name, &args).with_file(|| match option("file") {
        Some(CommandDataOptionValue::Attachment(id)) => cmd.data.resolved.attachments.get(id).cloned().map(Box::new),
        _ => None,
    })
}

/// Removes mentions of the bot (`<@id>` and the older `<@!id>`) and trims the rest.
pub fn strip_mentions(content: &str, bot: UserId) -> String {
    content.replace(&format!("<@{bot}>"), " ").replace(&format!("<@!{bot}>"), " ").trim().to_owned()
}

/// Decides whether a message is for the bot: a DM, or a guild message that mentions it. Bots'
/// messages (including the bot's own) are ignored. Attachments win over text: they are ingested.
pub fn inbound(msg: &Message, bot: UserId) -> Option<Inbound> {
    if msg.author.bot || msg.author.id == bot || !matches!(msg.kind, MessageType::Regular | MessageType::InlineReply) {
        return None;
    }
    let direct = msg.guild_id.is_none();
    if !direct && !msg.mentions.iter().any(|u| u.id == bot) {
        return None;
    }
    if !msg.attachments.is_empty() {
        return Some(Inbound::Ingest(msg.attachments.clone()));
    }
    let text = strip_mentions(&msg.content, bot);
    Some(if text.is_empty() { Inbound::Help } else { Inbound::Ask(text) })
}

/// Turns earlier thread messages (as Discord lists them: newest first) into turns, oldest first.
/// The bot's messages are the assistant's turns; empty and system messages are skipped.
pub fn history(newest_first: &[Message], bot: UserId) -> Vec<Turn> {
    newest_first
        .iter()
        .rev()
        .filter(|m| matches!(m.kind, MessageType::Regular | MessageType::InlineReply))
        .filter_map(|m| {
            let role = if m.author.id == bot { Role::Assistant } else { Role::User };
            let text = strip_mentions(&m.content, bot);
            (!text.is_empty()).then_some(Turn { role, text })
        })
        .collect()
}

/// A question with the thread's history.
pub fn question(text: &str, history: Vec<Turn>) -> Question {
    Question { text: text.to_owned(), history }
}

/// Refuses an attachment before downloading it: over `max_bytes` (from Discord's metadata), or
/// audio, video or an image, which Footnote cannot read. The text is safe to show in the chat.
pub fn check_attachment(attachment: &Attachment, max_bytes: u64) -> Result<(), String> {
    if u64::from(attachment.size) > max_bytes {
        return Err(format!(
            "“{}” is {}, over this bot's limit of {}. Nothing was added.",
            attachment.filename,
            human_bytes(u64::from(attachment.size)),
            human_bytes(max_bytes)
        ));
    }
    let media = attachment
        .content_type
        .as_deref()
        .and_then(|t| ["image/", "video/", "audio/"].iter().find(|p| t.starts_with(*p)).map(|_| t));
    if let Some(kind) = media {
        return Err(IngestError::Unsupported(format!("“{}” ({kind})", attachment.filename)).user_message());
    }
    Ok(())
}

/// The upload of a downloaded attachment. A long paste (which Discord always names
/// `message.txt`) is named after its attachment id instead, since a document of the same name
/// would be replaced.
pub fn upload(attachment: &Attachment, bytes: Vec<u8>, origin: Origin) -> Upload {
    let file_name = if attachment.filename == LONG_PASTE_NAME {
        format!("message-{}.txt", attachment.id)
    } else {
        attachment.filename.clone()
    };
    Upload { file_name, mime: attachment.content_type.clone(), bytes, origin }
}

/// A link that opens a message in Discord.
pub fn message_link(guild: Option<GuildId>, channel: ChannelId, message: MessageId) -> String {
    let guild = guild.map_or_else(|| "@me".to_owned(), |g| g.to_string());
    format!("https://discord.com/channels/{guild}/{channel}/{message}")
}

/// Where a file attached to `msg` came from: the message link, its author and its time.
pub fn message_origin(msg: &Message) -> Origin {
    Origin {
        link: Some(message_link(msg.guild_id, msg.channel_id, msg.id)),
        sender: Some(
            msg.member.as_deref().and_then(|m| m.nick.clone()).unwrap_or_else(|| msg.author.display_name().to_owned()),
        ),
        sent_at: msg.timestamp.to_rfc3339(),
    }
}

/// Where a file given to `/ingest` came from: the invoking user and the interaction's time.
pub fn command_origin(cmd: &CommandInteraction) -> Origin {
    let sender = cmd.member.as_deref().map_or_else(|| cmd.user.display_name(), |m| m.display_name());
    Origin { link: None, sender: Some(sender.to_owned()), sent_at: cmd.id.created_at().to_rfc3339() }
}

/// A thread name from a question: its first line, cut to Discord's 100 characters.
pub fn thread_name(question: &str) -> String {
    let line = question.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("Question");
    if line.chars().count() <= THREAD_NAME_LIMIT {
        return line.to_owned();
    }
    let mut name: String = line.chars().take(THREAD_NAME_LIMIT - 1).collect();
    name.push('…');
    name
}

/// The slash commands the bot registers on start.
pub fn commands() -> Vec<CreateCommand> {
    vec![
        CreateCommand::new("ask").description("Ask a question about this channel's documents").add_option(
            CreateCommandOption::new(CommandOptionType::String, "question", "What you want to know")
                .required(true)
                .max_length(QUESTION_MAX_LENGTH),
        ),
        CreateCommand::new("ingest").description("Add a file to this channel's documents").add_option(
            CreateCommandOption::new(CommandOptionType::Attachment, "file", "PDF, Word, HTML, Markdown, text or email")
                .required(true),
        ),
        CreateCommand::new("warmup").description("Load the models now so the next answer is quick"),
        CreateCommand::new("sources").description("List the documents this channel can search"),
        CreateCommand::new("forget").description("Remove a document from this channel's documents").add_option(
            CreateCommandOption::new(CommandOptionType::String, "id", "The document id from /sources").required(true),
        ),
        CreateCommand::new("status").description("Show whether the models are ready and what is stored"),
        CreateCommand::new("help").description("How to use this bot"),
    ]
}

#[cfg(test)]
#[path = "convert_tests.rs"]
mod tests;
