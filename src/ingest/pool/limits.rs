//! Kernel limits on a worker process, set from outside with `prlimit(2)` (Linux). Elsewhere the
//! workers run without them: the pool still kills a worker past its wall time.
//!
//! - `RLIMIT_AS`: the address space, `ingest.worker_memory`; an allocation past it fails and the
//!   worker aborts.
//! - `RLIMIT_CPU`: CPU seconds. The limit counts over the worker's life and workers are reused,
//!   so before each job the soft limit is moved to what the worker has used so far plus the
//!   job's allowance ([`allow_cpu`]); the kernel sends SIGXCPU at the soft limit (which ends
//!   the worker) and SIGKILL at the hard one.
//! - `RLIMIT_CORE` 0 (a crash leaves no core file), `RLIMIT_FSIZE` 0 (no file writes),
//!   `RLIMIT_NOFILE` 3 (stdin, stdout and stderr: no file or socket can be opened),
//!   `RLIMIT_NPROC` 0 (no new process or thread).

use std::io;

/// CPU seconds a worker may use over its life; the pool replaces it before it gets there.
pub(super) fn lifetime_cpu(per_job: u64) -> u64 {
    per_job.saturating_mul(20).max(600)
}

#[cfg(target_os = "linux")]
mod imp {
    use std::io;

    use rustix::process::{Pid, Resource, Rlimit, prlimit};

    fn pid(raw: u32) -> io::Result<Pid> {
        i32::try_from(raw).ok().and_then(Pid::from_raw).ok_or_else(|| io::Error::other("no such process"))
    }

    fn set(pid: Pid, resource: Resource, soft: u64, hard: u64) -> io::Result<()> {
        prlimit(Some(pid), resource, Rlimit { current: Some(soft), maximum: Some(hard) })?;
        Ok(())
    }

    pub fn confine(raw: u32, memory: u64, cpu_hard: u64) -> io::Result<()> {
        let pid = pid(raw)?;
        set(pid, Resource::As, memory, memory)?;
        set(pid, Resource::Cpu, cpu_hard, cpu_hard)?;
        set(pid, Resource::Core, 0, 0)?;
        set(pid, Resource::Fsize, 0, 0)?;
        set(pid, Resource::Nofile, 3, 3)?;
        set(pid, Resource::Nproc, 0, 0)?;
        Ok(())
    }

    pub fn allow_cpu(raw: u32, seconds: u64, cpu_hard: u64) -> io::Result<()> {
        set(pid(raw)?, Resource::Cpu, seconds.min(cpu_hard), cpu_hard)
    }

    /// CPU seconds used so far (user + system), from `/proc/PID/stat`.
    pub fn cpu_seconds(raw: u32) -> Option<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{raw}/stat")).ok()?;
        // The command name may hold spaces and parentheses: fields start after the last ')'.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        // /proc reports clock ticks of USER_HZ, 100 on every Linux architecture.
        Some(ticks / 100)
    }

    /// A `kB` field of `/proc/PID/status` (`VmRSS`, `VmHWM`), in bytes.
    pub fn status_bytes(raw: u32, field: &str) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{raw}/status")).ok()?;
        let line = status.lines().find(|l| l.starts_with(field))?;
        Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use std::io;

    pub fn confine(_: u32, _: u64, _: u64) -> io::Result<()> {
        Ok(())
    }

    pub fn allow_cpu(_: u32, _: u64, _: u64) -> io::Result<()> {
        Ok(())
    }

    pub fn cpu_seconds(_: u32) -> Option<u64> {
        None
    }

    pub fn status_bytes(_: u32, _: &str) -> Option<u64> {
        None
    }
}

/// True where the kernel limits are set.
pub(super) const ENFORCED: bool = cfg!(target_os = "linux");

/// Sets every limit on a new worker, once it is ready and before it is sent anything.
pub(super) fn confine(pid: u32, memory: u64, cpu_hard: u64) -> io::Result<()> {
    imp::confine(pid, memory, cpu_hard)
}

/// Lets a worker use `per_job` more CPU seconds than it has used so far. Returns the seconds it
/// had used, when known.
pub(super) fn allow_cpu(pid: u32, per_job: u64, cpu_hard: u64) -> io::Result<Option<u64>> {
    let used = imp::cpu_seconds(pid);
    if let Some(used) = used {
        imp::allow_cpu(pid, used.saturating_add(per_job), cpu_hard)?;
    }
    Ok(used)
}

/// CPU seconds a worker has used so far, when known.
pub(super) fn cpu_used(pid: u32) -> Option<u64> {
    imp::cpu_seconds(pid)
}

/// Resident memory now (`VmRSS`) and at its peak (`VmHWM`), in bytes, when known.
pub(super) fn memory(pid: u32) -> (Option<u64>, Option<u64>) {
    (imp::status_bytes(pid, "VmRSS:"), imp::status_bytes(pid, "VmHWM:"))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        assert!(super::imp::cpu_seconds(me).is_some());
        let (rss, peak) = super::memory(me);
        assert!(rss.unwrap() > 0 && peak.unwrap() >= rss.unwrap());
    }
}
