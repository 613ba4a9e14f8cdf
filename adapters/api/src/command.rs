//! The commands a chat user gives the bot, whatever the platform's syntax (`/sources`,
//! `!sources`, `/footnote sources`): one set of verbs, parsed the same way everywhere.

/// A command to the bot. `F` is what a platform's `ingest` names: an attachment, the message
/// replied to, or nothing (`Infallible`) where files come another way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command<F> {
    /// `ask QUESTION`: answer it.
    Ask(String),
    /// `ingest`: add the file named by `F` to the room's documents.
    Ingest(F),
    /// `warmup`: load the models now.
    Warmup,
    /// `sources` (or `documents`): list the documents the room can read.
    Sources,
    /// `forget ID`: remove a document (the id is empty when none was given).
    Forget(String),
    /// `status`: whether the models are ready and what is stored.
    Status,
    /// `help`, an empty command, or `ask` without a question.
    Help,
    /// A word that is no command; the word as typed.
    Unknown(String),
}

/// The verbs, for a platform's help text or its command registration.
pub const VERBS: &[&str] = &["ask", "ingest", "warmup", "sources", "forget", "status", "help"];

impl Command<()> {
    /// The command `word args`: the word in any case, surrounding space ignored. `ingest`
    /// carries `()`; the adapter says what it names with [`Command::with_file`].
    pub fn parse(word: &str, args: &str) -> Self {
        let args = args.trim();
        match word.trim().to_lowercase().as_str() {
            "" | "help" => Command::Help,
            "ask" if args.is_empty() => Command::Help,
            "ask" => Command::Ask(args.to_owned()),
            "ingest" => Command::Ingest(()),
            "warmup" => Command::Warmup,
            "sources" | "documents" => Command::Sources,
            "forget" => Command::Forget(args.to_owned()),
            "status" => Command::Status,
            _ => Command::Unknown(word.trim().to_owned()),
        }
    }

    /// The same command on a platform where files never come with a command: `ingest` is a
    /// word it does not know.
    pub fn without_files(self) -> Command<std::convert::Infallible> {
        self.map_ingest(|| Command::Unknown("ingest".to_owned()))
    }

    /// The same command, its `ingest` naming what `file` returns.
    pub fn with_file<F>(self, file: impl FnOnce() -> F) -> Command<F> {
        self.map_ingest(|| Command::Ingest(file()))
    }

    /// The same command, `ingest` replaced by what `ingest` returns.
    fn map_ingest<F>(self, ingest: impl FnOnce() -> Command<F>) -> Command<F> {
        match self {
            Command::Ingest(()) => ingest(),
            Command::Ask(text) => Command::Ask(text),
            Command::Warmup => Command::Warmup,
            Command::Sources => Command::Sources,
            Command::Forget(id) => Command::Forget(id),
            Command::Status => Command::Status,
            Command::Help => Command::Help,
            Command::Unknown(word) => Command::Unknown(word),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_in_any_case_with_their_arguments() {
        assert_eq!(Command::parse("ASK", " How? "), Command::Ask("How?".into()));
        assert_eq!(Command::parse("forget", "d7"), Command::Forget("d7".into()));
        assert_eq!(Command::parse("Documents", ""), Command::Sources);
        assert_eq!(Command::parse("ingest", "").with_file(|| 7), Command::Ingest(7));
        assert_eq!(Command::parse("ingest", "").without_files(), Command::Unknown("ingest".into()));
        for verb in VERBS {
            assert!(!matches!(Command::parse(verb, "x"), Command::Unknown(_)), "{verb}");
        }
    }

    #[test]
    fn a_missing_argument_or_word_asks_for_help_and_other_words_are_unknown() {
        assert_eq!(Command::parse("ask", "  "), Command::Help);
        assert_eq!(Command::parse("forget", ""), Command::Forget(String::new()), "the adapter says what is missing");
        assert_eq!(Command::parse("", ""), Command::Help);
        assert_eq!(Command::parse("dance", "now"), Command::Unknown("dance".into()));
    }
}
