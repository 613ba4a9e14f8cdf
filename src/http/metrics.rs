//! The Prometheus recorder behind `/metrics`. The core records through the `metrics` facade
//! (ask latency split into retrieval / first token / total, queue depth, ingest counts, Ollama
//! errors); this installs the process-wide recorder once and renders it.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Latency buckets in seconds, from a fast retrieval to a slow answer on a CPU.
const BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0];

/// The process-wide handle; `None` when another recorder was installed first.
pub fn handle() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Prefix("footnote_ask_".into()), BUCKETS)
                .ok()?;
            match builder.install_recorder() {
                Ok(handle) => Some(handle),
                Err(e) => {
                    tracing::warn!(error = %e, "Cannot install the metrics recorder; /metrics stays empty.");
                    None
                }
            }
        })
        .clone()
}
