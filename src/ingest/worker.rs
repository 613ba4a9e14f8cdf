//! The extraction worker: the `footnote` binary started again with the hidden subcommand
//! [`SUBCOMMAND`] by the [`super::pool::WorkerPool`]. It reads jobs from stdin and answers on
//! stdout ([`super::protocol`]), one file at a time, and logs to stderr (which the service relays
//! into its own log).
//!
//! It builds the tokenizer before saying hello, so that the pool starts it off the hot path. Its
//! limits (memory, CPU time, no files, no new processes) are set by the pool from outside after
//! the hello and before the first job; the worker itself only asks the kernel to kill it should
//! the service die.

use std::io::{self, BufReader, BufWriter};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::ExitCode;

use super::output::too_complex;
use super::protocol::{self, Hello, Job, MAX_HEADER, Reply};
use super::{Chunker, count_tokens, read_file};

/// The hidden subcommand that runs a worker: `footnote extract-worker`.
pub const SUBCOMMAND: &str = "extract-worker";

/// Runs the worker until its input ends. Errors on its pipes end it with a failure status.
pub fn run() -> ExitCode {
    #[cfg(target_os = "linux")]
    if let Err(error) = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL)) {
        tracing::warn!(%error, "cannot ask to be killed with the service");
    }
    match serve(&mut BufReader::new(io::stdin().lock()), &mut BufWriter::new(io::stdout().lock())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "extraction worker stopped");
            ExitCode::FAILURE
        }
    }
}

fn serve(input: &mut impl io::Read, output: &mut impl io::Write) -> io::Result<()> {
    count_tokens("");
    protocol::write_frame(output, &serde_json::to_vec(&Hello::current())?)?;
    let mut chunker: Option<((usize, usize), Chunker)> = None;
    loop {
        let Some(header) = protocol::read_frame(input, MAX_HEADER)? else {
            return Ok(());
        };
        let job: Job = serde_json::from_slice(&header)?;
        let Some(bytes) = protocol::read_frame(input, u32::MAX as usize)? else {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "a job without its file"));
        };
        let settings = (job.chunk_tokens, job.chunk_overlap);
        let chunker = match &chunker {
            Some((s, c)) if *s == settings => c.clone(),
            _ => {
                let c = Chunker::new(job.chunk_tokens, job.chunk_overlap);
                chunker = Some((settings, c.clone()));
                c
            }
        };
        let reply: Reply = catch_unwind(AssertUnwindSafe(|| {
            read_file(&job.file_name, job.mime.as_deref(), &bytes, &job.limits, &chunker)
        }))
        .unwrap_or_else(|_| {
            tracing::warn!(file = job.file_name, "chunking panicked on this file");
            Err(too_complex())
        });
        drop(bytes);
        protocol::write_frame(output, &serde_json::to_vec(&reply)?)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{Chunked, Limits};

    fn job(name: &str) -> Vec<u8> {
        let job =
            Job { file_name: name.into(), mime: None, limits: Limits::default(), chunk_tokens: 200, chunk_overlap: 30 };
        serde_json::to_vec(&job).unwrap()
    }

    #[test]
    fn answers_jobs_in_order_until_its_input_ends() {
        let mut input = Vec::new();
        protocol::write_frame(&mut input, &job("a.md")).unwrap();
        protocol::write_frame(&mut input, b"# Alpha\n\nFirst file.").unwrap();
        protocol::write_frame(&mut input, &job("b.txt")).unwrap();
        protocol::write_frame(&mut input, b"   ").unwrap();
        let mut output = Vec::new();
        serve(&mut &input[..], &mut output).unwrap();
        let mut replies = &output[..];
        let hello: Hello =
            serde_json::from_slice(&protocol::read_frame(&mut replies, MAX_HEADER).unwrap().unwrap()).unwrap();
        assert_eq!(hello, Hello::current());
        let first: Reply =
            serde_json::from_slice(&protocol::read_frame(&mut replies, 1 << 20).unwrap().unwrap()).unwrap();
        let Chunked { title, chunks, .. } = first.unwrap();
        assert_eq!((title.as_str(), chunks[0].text.as_str()), ("Alpha", "First file."));
        let second: Reply =
            serde_json::from_slice(&protocol::read_frame(&mut replies, 1 << 20).unwrap().unwrap()).unwrap();
        assert_eq!(second, Err(footnote_adapter::IngestError::Empty));
        assert_eq!(protocol::read_frame(&mut replies, 16).unwrap(), None);
    }
}
