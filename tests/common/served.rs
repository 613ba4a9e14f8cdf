//! `footnote serve` for a [`TestEnv`] (through [`super::process`]), and the memory of it and of
//! its children (the extraction workers) sampled from `/proc`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::TestEnv;
use super::process::{Serve, Settings};

/// Starts `footnote serve` for `env` (see [`Settings::of`]) and waits until it listens.
pub fn start(env: &TestEnv, settings: &[(&str, &str)], config: Option<&Path>) -> Serve {
    Serve::start(&Settings::of(env, settings, config))
}

/// A `kB` field of `/proc/PID/status`, in bytes.
pub fn status_bytes(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
}

/// The children of a process (every thread's).
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for task in tasks.flatten() {
        if let Ok(list) = std::fs::read_to_string(task.path().join("children")) {
            out.extend(list.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
        }
    }
    out
}

/// Samples every 10 ms the resident memory of a process and the peak of each of its children.
pub struct Sampler {
    pid: u32,
    stop: Arc<AtomicBool>,
    peaks: Arc<Mutex<(u64, HashMap<u32, u64>)>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    pub fn start(pid: u32) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peaks: Arc<Mutex<(u64, HashMap<u32, u64>)>> = Arc::new(Mutex::new((0, HashMap::new())));
        let thread = {
            let (stop, peaks) = (stop.clone(), peaks.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let own = status_bytes(pid, "VmRSS:").unwrap_or(0);
                    let kids: Vec<(u32, u64)> =
                        children(pid).into_iter().map(|c| (c, status_bytes(c, "VmRSS:").unwrap_or(0))).collect();
                    let mut peaks = peaks.lock().unwrap();
                    peaks.0 = peaks.0.max(own);
                    for (child, rss) in kids {
                        let peak = peaks.1.entry(child).or_default();
                        *peak = (*peak).max(rss);
                    }
                    drop(peaks);
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
        };
        Sampler { pid, stop, peaks, thread: Some(thread) }
    }

    /// The peaks since the last call (the process's own, and the largest child's), and resets
    /// them.
    pub fn take(&self) -> (u64, u64) {
        // What runs now counts too, so that a moment shorter than one sampling step is not 0.
        let own = status_bytes(self.pid, "VmRSS:").unwrap_or(0);
        let kids: Vec<(u32, u64)> =
            children(self.pid).into_iter().map(|c| (c, status_bytes(c, "VmRSS:").unwrap_or(0))).collect();
        let mut peaks = self.peaks.lock().unwrap();
        peaks.0 = peaks.0.max(own);
        for (child, rss) in kids {
            let peak = peaks.1.entry(child).or_default();
            *peak = (*peak).max(rss);
        }
        let result = (peaks.0, peaks.1.values().copied().max().unwrap_or(0));
        *peaks = (0, HashMap::new());
        result
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Waits until `check` holds, polling every 50 ms, or panics with `what` after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
