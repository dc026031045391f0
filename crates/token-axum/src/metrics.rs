//! `GET /metrics`: the counters and gauges recorded through the
//! [`metrics`](https://docs.rs/metrics) facade — tessera's own (see
//! [`token_policy::telemetry`], and [`HTTP_AUTH_TOTAL`] here) and the application's —
//! in the Prometheus text format (`text/plain; version=0.0.4`).
//!
//! [`Prometheus`] is a `metrics` recorder that keeps every series in this process and
//! renders them on demand; [`Prometheus::install`] makes it the process's recorder.
//! [`MetricsRoute`] serves it, running its collectors first (the revocation replica's
//! lag, the key table's ages: gauges read from state rather than counted as work
//! happens).
//!
//! ```no_run
//! use axum::Router;
//! use token_axum::metrics::{MetricsRoute, Prometheus};
//!
//! # fn main() -> Result<(), token_axum::Error> {
//! let prometheus = Prometheus::install()?;
//! let app: Router = Router::new().merge(MetricsRoute::new(prometheus).router());
//! # let _ = app;
//! # Ok(())
//! # }
//! ```
//!
//! Labels are fixed strings (reasons, jobs, states): no token, key or password is ever
//! one, and nothing a client sends becomes a label. The route needs no credential;
//! serve it where only the scraper reaches it if the figures are not for everyone.

use std::collections::{BTreeMap, HashMap};
use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use metrics::{
    Counter, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};
use token_core::Reason;
use token_policy::telemetry::ReasonCounter;

use crate::error::{Error, Result};

/// The route's path.
pub const METRICS_PATH: &str = "/metrics";
/// The Prometheus text format's content type.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4";
/// `tessera_http_auth_total{outcome, reason}`: the requests [`crate::AuthLayer`] (or
/// an extractor on a route without it) authenticated, by outcome (`accepted`,
/// `refused`, `unavailable`) and reason (`none`, or the [`Reason`] phrase: `no
/// credentials`, `insufficient scope`, `expired`, …).
pub const HTTP_AUTH_TOTAL: &str = "tessera_http_auth_total";

/// Histogram buckets, in seconds (Prometheus' defaults).
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Records one request's authentication (`None`: accepted).
pub(crate) fn record_auth(refused: Option<Reason>) {
    static COUNTER: OnceLock<ReasonCounter> = OnceLock::new();
    COUNTER
        .get_or_init(|| ReasonCounter::new(HTTP_AUTH_TOTAL, &[]))
        .record(refused);
}

/// A `metrics` recorder that keeps every series in memory and renders them in the
/// Prometheus text format. Cheap to clone (clones share the series).
#[derive(Clone, Default)]
pub struct Prometheus {
    registry: Arc<Registry>,
}

impl fmt::Debug for Prometheus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prometheus").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Registry {
    counters: RwLock<HashMap<Key, Arc<AtomicU64>>>,
    gauges: RwLock<HashMap<Key, Arc<AtomicU64>>>,
    histograms: RwLock<HashMap<Key, Arc<Buckets>>>,
    help: RwLock<HashMap<String, String>>,
}

/// One histogram: a count per bucket (the last one past every bound), the sum and the
/// count.
struct Buckets {
    counts: [AtomicU64; BUCKETS.len() + 1],
    /// An `f64`, as bits.
    sum: AtomicU64,
    count: AtomicU64,
}

impl Default for Buckets {
    fn default() -> Self {
        Self {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            sum: AtomicU64::new(0.0_f64.to_bits()),
            count: AtomicU64::new(0),
        }
    }
}

impl HistogramFn for Buckets {
    fn record(&self, value: f64) {
        let slot = BUCKETS
            .iter()
            .position(|bound| value <= *bound)
            .unwrap_or(BUCKETS.len());
        if let Some(count) = self.counts.get(slot) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        let _ = self
            .sum
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + value).to_bits())
            });
        self.count.fetch_add(1, Ordering::Relaxed);
    }
}

/// The series of `map` for `key`, made on first use.
fn series<T: Default>(map: &RwLock<HashMap<Key, Arc<T>>>, key: &Key) -> Arc<T> {
    if let Some(found) = map.read().unwrap_or_else(PoisonError::into_inner).get(key) {
        return found.clone();
    }
    map.write()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(key.clone())
        .or_default()
        .clone()
}

impl Recorder for Prometheus {
    fn describe_counter(&self, key: KeyName, _: Option<Unit>, description: SharedString) {
        self.describe(&key, &description);
    }

    fn describe_gauge(&self, key: KeyName, _: Option<Unit>, description: SharedString) {
        self.describe(&key, &description);
    }

    fn describe_histogram(&self, key: KeyName, _: Option<Unit>, description: SharedString) {
        self.describe(&key, &description);
    }

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(series(&self.registry.counters, key))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(series(&self.registry.gauges, key))
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(series(&self.registry.histograms, key))
    }
}

/// The process's recorder, once [`Prometheus::install`] made it: `None` when another
/// recorder was there first.
static INSTALLED: OnceLock<Option<Prometheus>> = OnceLock::new();

impl Prometheus {
    /// A recorder of its own, not installed (see [`Prometheus::install`]; or
    /// `metrics::with_local_recorder` for a test).
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes a [`Prometheus`] the process's `metrics` recorder, with the help text of
    /// tessera's metrics, and returns it; later calls return the same one.
    ///
    /// # Errors
    /// [`Error::Config`] when another `metrics` recorder was installed first.
    pub fn install() -> Result<Self> {
        INSTALLED
            .get_or_init(|| {
                let prometheus = Self::new();
                metrics::set_global_recorder(prometheus.clone()).ok()?;
                token_policy::telemetry::describe();
                metrics::describe_counter!(
                    HTTP_AUTH_TOTAL,
                    "Requests authenticated by the auth layer, by outcome and reason."
                );
                Some(prometheus)
            })
            .clone()
            .ok_or_else(|| {
                Error::Config("another `metrics` recorder is installed in this process".into())
            })
    }

    fn describe(&self, name: &KeyName, description: &str) {
        self.registry
            .help
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.as_str().to_owned(), description.to_owned());
    }

    /// Every series, in the Prometheus text format (version 0.0.4): families sorted by
    /// name, each with its `# HELP` (when described) and `# TYPE` line, then its
    /// series sorted by labels.
    pub fn render(&self) -> String {
        let mut families: BTreeMap<String, Family> = BTreeMap::new();
        for (key, value) in read(&self.registry.counters).iter() {
            if let Some(f) = family(&mut families, key, Kind::Counter) {
                let labels = labels(key, None);
                let value = value.load(Ordering::Acquire);
                f.series
                    .push((labels.clone(), vec![format!("{labels} {value}")]));
            }
        }
        for (key, value) in read(&self.registry.gauges).iter() {
            if let Some(f) = family(&mut families, key, Kind::Gauge) {
                let labels = labels(key, None);
                let value = number(f64::from_bits(value.load(Ordering::Acquire)));
                f.series
                    .push((labels.clone(), vec![format!("{labels} {value}")]));
            }
        }
        for (key, buckets) in read(&self.registry.histograms).iter() {
            if let Some(f) = family(&mut families, key, Kind::Histogram) {
                let mut lines = Vec::with_capacity(BUCKETS.len() + 3);
                let mut cumulative = 0;
                for (i, count) in buckets.counts.iter().enumerate() {
                    cumulative += count.load(Ordering::Acquire);
                    let le = BUCKETS
                        .get(i)
                        .map_or_else(|| "+Inf".to_owned(), |b| number(*b));
                    lines.push(format!("_bucket{} {cumulative}", labels(key, Some(&le))));
                }
                let labels = labels(key, None);
                let sum = number(f64::from_bits(buckets.sum.load(Ordering::Acquire)));
                lines.push(format!("_sum{labels} {sum}"));
                let count = buckets.count.load(Ordering::Acquire);
                lines.push(format!("_count{labels} {count}"));
                f.series.push((labels, lines));
            }
        }
        let help = read(&self.registry.help);
        let mut out = String::new();
        for (name, mut family) in families {
            let described = help
                .iter()
                .find(|(k, _)| sanitize(k, false) == name)
                .map(|(_, text)| text);
            if let Some(text) = described {
                let _ = writeln!(out, "# HELP {name} {}", escape_help(text));
            }
            let _ = writeln!(out, "# TYPE {name} {}", family.kind.as_str());
            family.series.sort();
            for (_, lines) in family.series {
                for line in lines {
                    let _ = writeln!(out, "{name}{line}");
                }
            }
        }
        out
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
        }
    }
}

struct Family {
    kind: Kind,
    /// Per series: its labels (the sort key) and its lines, after the name.
    series: Vec<(String, Vec<String>)>,
}

/// The family of `key`, made with `kind`; `None` when the name is already another
/// kind's (a name has one type in the format: the first kind rendered keeps it).
fn family<'a>(
    families: &'a mut BTreeMap<String, Family>,
    key: &Key,
    kind: Kind,
) -> Option<&'a mut Family> {
    let family = families
        .entry(sanitize(key.name(), false))
        .or_insert_with(|| Family {
            kind,
            series: Vec::new(),
        });
    (family.kind == kind).then_some(family)
}

/// `{k="v",…}` (empty without labels), with `le` last for a histogram bucket.
fn labels(key: &Key, le: Option<&str>) -> String {
    let mut pairs: Vec<String> = key
        .labels()
        .map(|l| {
            format!(
                "{}=\"{}\"",
                sanitize(l.key(), true),
                escape_label(l.value())
            )
        })
        .collect();
    if let Some(le) = le {
        pairs.push(format!("le=\"{le}\""));
    }
    if pairs.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", pairs.join(","))
    }
}

/// A metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`) or a label name (no `:`), other
/// characters replaced by `_`.
fn sanitize(name: &str, label: bool) -> String {
    let mut out = String::with_capacity(name.len() + 1);
    for (i, c) in name.chars().enumerate() {
        if i == 0 && c.is_ascii_digit() {
            out.push('_');
        }
        let ok = c.is_ascii_alphanumeric() || c == '_' || (c == ':' && !label);
        out.push(if ok { c } else { '_' });
    }
    if out.is_empty() {
        out.push('_');
    }
    out
}

fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A sample value: `+Inf`, `-Inf`, `NaN` or the number.
fn number(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        value.to_string()
    }
}

/// A collector: sets gauges from state just before a scrape.
type Collector = Arc<dyn Fn() + Send + Sync>;

/// `GET /metrics` for a [`Prometheus`] recorder: runs the collectors (into that
/// recorder), then answers the rendering with `Content-Type: text/plain;
/// version=0.0.4` and `Cache-Control: no-store`.
#[derive(Clone)]
pub struct MetricsRoute {
    prometheus: Prometheus,
    collectors: Vec<Collector>,
}

impl fmt::Debug for MetricsRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsRoute")
            .field("collectors", &self.collectors.len())
            .finish_non_exhaustive()
    }
}

impl MetricsRoute {
    /// Serves `prometheus`.
    pub fn new(prometheus: Prometheus) -> Self {
        Self {
            prometheus,
            collectors: Vec::new(),
        }
    }

    /// Runs `collect` before each rendering, with the route's recorder in force: for
    /// gauges read from state, such as
    /// `move || replica.record_metrics()` (`token_policy::ReplicatedBlocklist`) or
    /// `move || keys.record_metrics()` (`token_policy::keystore::KeyStore`).
    #[must_use]
    pub fn collect_with(mut self, collect: impl Fn() + Send + Sync + 'static) -> Self {
        self.collectors.push(Arc::new(collect));
        self
    }

    /// The collectors run, then the rendering.
    pub fn render(&self) -> String {
        metrics::with_local_recorder(&self.prometheus, || {
            for collect in &self.collectors {
                collect();
            }
        });
        self.prometheus.render()
    }

    /// A router with `GET /metrics`, to merge into the application's.
    pub fn router<S>(self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        Router::new().route(
            METRICS_PATH,
            get(move || {
                let route = self.clone();
                async move {
                    (
                        [
                            (header::CONTENT_TYPE, CONTENT_TYPE),
                            (header::CACHE_CONTROL, "no-store"),
                        ],
                        route.render(),
                    )
                        .into_response()
                }
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_gauges_and_histograms_in_the_text_format() {
        let p = Prometheus::new();
        metrics::with_local_recorder(&p, || {
            metrics::describe_counter!("app_requests_total", "Requests.\nAll of them.");
            metrics::counter!("app_requests_total", "route" => "/a", "quote" => "x\"y\\z")
                .increment(2);
            metrics::counter!("app_requests_total", "route" => "/a", "quote" => "x\"y\\z")
                .increment(1);
            metrics::counter!("app_requests_total", "route" => "/b", "quote" => "").increment(1);
            metrics::gauge!("app.lag").set(f64::INFINITY);
            metrics::gauge!("app_level").set(-1.5);
            metrics::histogram!("app_seconds").record(0.02);
            metrics::histogram!("app_seconds").record(20.0);
        });
        let text = p.render();
        let expected = [
            "# TYPE app_lag gauge",
            "app_lag +Inf",
            "# TYPE app_level gauge",
            "app_level -1.5",
            "# HELP app_requests_total Requests.\\nAll of them.",
            "# TYPE app_requests_total counter",
            "app_requests_total{route=\"/a\",quote=\"x\\\"y\\\\z\"} 3",
            "app_requests_total{route=\"/b\",quote=\"\"} 1",
            "# TYPE app_seconds histogram",
            "app_seconds_bucket{le=\"0.01\"} 0",
            "app_seconds_bucket{le=\"0.025\"} 1",
            "app_seconds_bucket{le=\"10\"} 1",
            "app_seconds_bucket{le=\"+Inf\"} 2",
            "app_seconds_sum 20.02",
            "app_seconds_count 2",
        ];
        for line in expected {
            assert!(text.lines().any(|l| l == line), "{line:?} not in\n{text}");
        }
        // Families in name order, each TYPE line before its samples.
        let types: Vec<&str> = text.lines().filter(|l| l.starts_with("# TYPE")).collect();
        assert_eq!(
            types,
            [
                "# TYPE app_lag gauge",
                "# TYPE app_level gauge",
                "# TYPE app_requests_total counter",
                "# TYPE app_seconds histogram"
            ]
        );
    }

    #[test]
    fn names_and_label_names_are_sanitized() {
        assert_eq!(sanitize("a.b-c:d", false), "a_b_c:d");
        assert_eq!(sanitize("a:b", true), "a_b");
        assert_eq!(sanitize("9lives", false), "_9lives");
        assert_eq!(sanitize("", true), "_");
    }

    #[test]
    fn a_name_keeps_the_first_kind_rendered() {
        let p = Prometheus::new();
        metrics::with_local_recorder(&p, || {
            metrics::counter!("clash").increment(1);
            metrics::gauge!("clash").set(5.0);
        });
        let text = p.render();
        assert!(text.contains("# TYPE clash counter\nclash 1\n"), "{text}");
        assert!(!text.contains("clash 5"), "{text}");
    }

    #[test]
    fn reasons_are_counted_under_fixed_labels() {
        let p = Prometheus::new();
        metrics::with_local_recorder(&p, || {
            record_auth(None);
            record_auth(Some(Reason::Expired));
            record_auth(Some(Reason::Expired));
            record_auth(Some(Reason::RevocationUnavailable));
        });
        let text = p.render();
        for line in [
            "tessera_http_auth_total{outcome=\"accepted\",reason=\"none\"} 1",
            "tessera_http_auth_total{outcome=\"refused\",reason=\"expired\"} 2",
            "tessera_http_auth_total{outcome=\"unavailable\",reason=\"revocation backend unavailable\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} not in\n{text}");
        }
    }

    #[test]
    fn the_route_runs_its_collectors_into_its_recorder() {
        let route = MetricsRoute::new(Prometheus::new())
            .collect_with(|| metrics::gauge!("collected").set(7.0));
        assert!(route.render().contains("collected 7\n"));
    }
}
