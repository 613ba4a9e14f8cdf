//! The `footnote` command: parses the command line, sets up logging, loads the configuration and
//! runs one command.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use footnote::config::Config;

mod cli;

/// Answers questions from your own documents, with numbered sources, using local models served
/// by Ollama.
#[derive(Parser, Debug)]
#[command(name = "footnote", version, about, propagate_version = true)]
struct Args {
    /// Configuration file (default: $FOOTNOTE_CONFIG, else ./footnote.toml if present).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Collection to use (default: `default`; `mcp`: every collection unless given).
    #[arg(long, short = 'c', global = true, value_name = "NAME")]
    collection: Option<String>,

    /// More log output (-v: info, -vv: debug). RUST_LOG overrides it.
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Add files or directories (recursively) to the collection.
    Ingest {
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// Ask a question; the answer streams in, then its numbered sources.
    Ask {
        question: Vec<String>,
        /// Print the whole answer as JSON (for scripts).
        #[arg(long)]
        json: bool,
    },
    /// Load the chat and embedding models into memory now.
    Warmup,
    /// Show whether Ollama is reachable, which models are loaded, and how much is stored.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// List the documents of the collection.
    Documents {
        #[arg(long)]
        json: bool,
    },
    /// Remove a document (by the id `documents` shows) and all its chunks.
    Forget { id: String },
    /// Rebuild the search indexes from the database and fill in missing embeddings.
    Reindex {
        /// Make every embedding again with the configured model (after changing ollama.embed_model).
        #[arg(long)]
        embeddings: bool,
    },
    /// Check Ollama, the models, the data directory and the configuration, and say what to fix.
    Doctor,
    /// Run the gateway: HTTP API and web page, chat adapters, model warm-up and back-fill.
    Serve,
    /// Apply the database migrations now (they also run on every start).
    Migrate,
    /// Copy the database (documents, chunks, embeddings) to FILE, a new file;
    /// safe while `footnote serve` runs. The embedded SQLite database only.
    Backup {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Replace the database by the backup FILE (checked first; the replaced database is kept
    /// beside it). Stop `footnote serve` first. The embedded SQLite database only.
    Restore {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Serve MCP (Model Context Protocol) on stdin/stdout, for an AI assistant or editor that
    /// starts it: search, ask, list documents, read passages, add text. As the operator: every
    /// collection, unless --collection narrows it to one.
    Mcp {
        /// Only read: no `add_text`.
        #[arg(long)]
        read_only: bool,
    },
    /// Read files for `serve` and `ingest` in a separate, limited process (started by them; reads
    /// jobs on stdin, answers on stdout).
    #[command(name = footnote::ingest::worker::SUBCOMMAND, hide = true)]
    ExtractWorker,
    /// Measure retrieval quality on a BEIR data set (corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv):
    /// nDCG@10, Recall@10, Recall@100 and MRR@10 for BM25, vector and hybrid search. The corpus
    /// goes into a throwaway collection (`--collection`, default `eval:<directory name>`).
    #[command(args_conflicts_with_subcommands = true)]
    Eval {
        #[command(subcommand)]
        what: Option<EvalWhat>,
        #[arg(value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Qrels file to use: qrels/SPLIT.tsv.
        #[arg(long, default_value = "test")]
        split: String,
        /// Keep the collection as already ingested instead of emptying and refilling it
        /// (for runs that change only retrieval settings).
        #[arg(long)]
        reuse: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Evaluate only the first N judged queries.
        #[arg(long, value_name = "N")]
        limit_queries: Option<usize>,
        /// Chunks taken from each retriever per query before folding them into documents.
        #[arg(long, value_name = "N", default_value_t = footnote::eval::run::DEFAULT_EVAL_TOP_K,
              value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=10_000))]
        top_k: usize,
        /// Also write each query's BM25 and vector lists (before fusion) to FILE, one JSON line
        /// per query, for replaying fusion settings (scripts/eval/replay-fusion.py).
        #[arg(long, value_name = "FILE")]
        dump_lists: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum EvalWhat {
    /// Measure the support check on labelled statement/passage pairs (JSONL with `statement`,
    /// `passage`, `label` SUPPORT / CONTRADICT / NOINFO): precision, recall and F1 of
    /// "supported" against the rest, ROC-AUC, and the confusion per label.
    Citations {
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Fit the weights and thresholds on FILE, report them (with 5-fold cross-validated
        /// figures) and print them as an `[answer.support]` section.
        #[arg(long)]
        tune: bool,
        /// Lexical evidence only: no embeddings (the check's fallback when they are missing).
        #[arg(long)]
        lexical: bool,
        /// Also ask the chat model (the `answer.verify = "model"` judge) about up to N pairs
        /// the scores leave in doubt, and report what its verdicts change.
        #[arg(long, value_name = "N")]
        judge: Option<usize>,
    },
}

/// glibc gives threads that allocate at once malloc arenas of their own (up to 8 per core) and
/// keeps what is freed in each: a large upload that passes through several runtime threads left
/// about 80 MB more resident in `footnote serve` than with two arenas (BENCHMARKS.md). Two,
/// unless `MALLOC_ARENA_MAX` says otherwise.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: called first in `main`, before any other thread exists; `mallopt` only sets a
        // parameter of the allocator.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, 2) };
    }
}

fn main() -> ExitCode {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    limit_malloc_arenas();
    let args = Args::parse();
    if matches!(args.command, Command::ExtractWorker) {
        // No configuration, no runtime: the worker is told everything it needs per file.
        cli::init_worker_logging();
        return footnote::ingest::worker::run();
    }
    // The service logs what it does at info level; one-shot commands only warn.
    let verbose = if matches!(args.command, Command::Serve) { args.verbose.max(1) } else { args.verbose };
    cli::init_logging(verbose);
    footnote::install_crypto_provider();
    let config = match Config::load(args.config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("footnote: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("footnote: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let only = args.collection.clone();
    let collection = args.collection.unwrap_or_else(|| "default".to_owned());
    let result = runtime.block_on(async move {
        match args.command {
            Command::Ingest { paths } => cli::ingest(config, &collection, &paths).await,
            Command::Ask { question, json } => cli::ask(config, &collection, &question.join(" "), json).await,
            Command::Warmup => cli::warmup(config).await,
            Command::Status { json } => cli::status(config, &collection, json).await,
            Command::Documents { json } => cli::documents(config, &collection, json).await,
            Command::Forget { id } => cli::forget(config, &collection, &id).await,
            Command::Reindex { embeddings } => cli::reindex(config, embeddings).await,
            Command::Doctor => cli::doctor(config).await,
            Command::Serve => cli::serve(config).await,
            Command::Migrate => cli::migrate::migrate(config).await,
            Command::Backup { file } => cli::backup(config, &file).await,
            Command::Restore { file } => cli::restore(config, &file).await,
            Command::Mcp { read_only } => cli::mcp(config, only.as_deref(), read_only).await,
            Command::ExtractWorker => unreachable!("handled before the configuration is loaded"),
            Command::Eval { what: Some(EvalWhat::Citations { file, json, tune, lexical, judge }), .. } => {
                cli::eval_citations(config, &file, cli::CitationArgs { json, tune, lexical, judge }).await
            }
            Command::Eval { what: None, dir: None, .. } => Err(anyhow::anyhow!(
                "give a BEIR data set directory (`footnote eval DIR`) or `footnote eval citations FILE`"
            )),
            Command::Eval { what: None, dir: Some(dir), split, reuse, json, limit_queries, top_k, dump_lists } => {
                // The global --collection defaults to "default", which eval never uses.
                let collection = (collection != "default").then_some(collection);
                let args = cli::EvalArgs { split, collection, reuse, json, limit_queries, top_k, dump_lists };
                cli::eval(config, &dir, args).await
            }
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("footnote: {e:#}");
            ExitCode::FAILURE
        }
    }
}
