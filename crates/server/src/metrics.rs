//! Prometheus metrics (`--metrics-listen`, a separate address): counts and latencies of what the
//! server does, never who did it. No label names a user, a device or an address (P7); every label
//! has a small fixed set of values.

use std::time::Duration;

use anonchat_proto::wire::{ErrorCode, RingEnd};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: Reason,
}

/// Why a ring ended, as the device was told.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)] // Label values are snake_case on the wire.
pub enum Reason {
    declined,
    timeout,
    answered_elsewhere,
    cancelled,
    unavailable,
}

impl Reason {
    const ALL: [Reason; 5] = [
        Reason::declined,
        Reason::timeout,
        Reason::answered_elsewhere,
        Reason::cancelled,
        Reason::unavailable,
    ];
}

impl From<&RingEnd> for Reason {
    fn from(r: &RingEnd) -> Self {
        match r {
            RingEnd::Declined => Reason::declined,
            RingEnd::Timeout => Reason::timeout,
            RingEnd::AnsweredElsewhere => Reason::answered_elsewhere,
            RingEnd::Cancelled => Reason::cancelled,
            RingEnd::Unavailable => Reason::unavailable,
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabel {
    pub code: Code,
}

/// An answer's class: `ok`, or the error code the client got.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Code {
    ok,
    bad_request,
    not_found,
    rate_limited,
    pow_required,
    unauthorized,
    taken,
    internal,
}

impl Code {
    const ALL: [Code; 8] = [
        Code::ok,
        Code::bad_request,
        Code::not_found,
        Code::rate_limited,
        Code::pow_required,
        Code::unauthorized,
        Code::taken,
        Code::internal,
    ];
}

impl From<ErrorCode> for Code {
    fn from(c: ErrorCode) -> Self {
        match c {
            ErrorCode::BadRequest => Code::bad_request,
            ErrorCode::NotFound => Code::not_found,
            ErrorCode::RateLimited => Code::rate_limited,
            ErrorCode::PowRequired => Code::pow_required,
            ErrorCode::Unauthorized => Code::unauthorized,
            ErrorCode::Taken => Code::taken,
            ErrorCode::Internal => Code::internal,
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: Kind,
}

/// Gated requests (lookups, rings, friend requests: held to the timing floor) apart from the rest.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Kind {
    gated,
    other,
}

type Latency = Family<KindLabel, Histogram, fn() -> Histogram>;

fn latency_buckets() -> Histogram {
    // 0.1 ms to ~3.3 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

pub struct Metrics {
    registry: Registry,
    /// Open WebSockets, authenticated or not.
    pub sockets: Gauge,
    /// Authenticated device connections.
    pub devices: Gauge,
    pub rings_started: Counter,
    pub rings_answered: Counter,
    pub ring_ends: Family<ReasonLabel, Counter>,
    pub relayed_bytes: Counter,
    /// Gated answers by class (found, not found, limited, priced).
    pub gate_answers: Family<CodeLabel, Counter>,
    /// Every answer to a socket request, by class.
    pub answers: Family<CodeLabel, Counter>,
    pub registrations: Family<CodeLabel, Counter>,
    pub request_seconds: Latency,
    pub store_errors: Counter,
    /// Redis round trips that failed, and frames dropped for a full outbox.
    pub redis_errors: Counter,
    pub redis_seconds: Histogram,
    /// A database round trip, probed every few seconds.
    pub store_seconds: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut m = Metrics {
            registry: Registry::with_prefix("anonchat"),
            sockets: Gauge::default(),
            devices: Gauge::default(),
            rings_started: Counter::default(),
            rings_answered: Counter::default(),
            ring_ends: Family::default(),
            relayed_bytes: Counter::default(),
            gate_answers: Family::default(),
            answers: Family::default(),
            registrations: Family::default(),
            request_seconds: Family::new_with_constructor(latency_buckets),
            store_errors: Counter::default(),
            redis_errors: Counter::default(),
            redis_seconds: latency_buckets(),
            store_seconds: latency_buckets(),
        };
        let r = &mut m.registry;
        r.register("websockets", "Open WebSockets", m.sockets.clone());
        r.register(
            "authenticated_devices",
            "Authenticated device connections",
            m.devices.clone(),
        );
        r.register("rings_started", "Rings started", m.rings_started.clone());
        r.register("rings_answered", "Rings answered", m.rings_answered.clone());
        r.register(
            "ring_ends",
            "Ring endings told to devices, by reason",
            m.ring_ends.clone(),
        );
        r.register_with_unit(
            "relayed",
            "Signaling blob bytes relayed",
            Unit::Bytes,
            m.relayed_bytes.clone(),
        );
        r.register(
            "gate_answers",
            "Answers to lookups, rings and friend requests, by class",
            m.gate_answers.clone(),
        );
        r.register(
            "answers",
            "Answers to socket requests, by class",
            m.answers.clone(),
        );
        r.register(
            "registrations",
            "Registration answers, by class",
            m.registrations.clone(),
        );
        r.register_with_unit(
            "request_duration",
            "From a request's arrival to its answer (gated ones include the timing floor)",
            Unit::Seconds,
            m.request_seconds.clone(),
        );
        r.register(
            "store_errors",
            "Database operations that failed",
            m.store_errors.clone(),
        );
        r.register(
            "redis_errors",
            "Redis operations that failed, and frames to other instances dropped",
            m.redis_errors.clone(),
        );
        r.register_with_unit(
            "store_probe_duration",
            "A database round trip (SELECT 1), probed every 10 s",
            Unit::Seconds,
            m.store_seconds.clone(),
        );
        r.register_with_unit(
            "redis_duration",
            "Redis round trips (shared state; 0 without --redis-url)",
            Unit::Seconds,
            m.redis_seconds.clone(),
        );
        // Every series exists from the start, at zero: a rate over it is 0, not "no data".
        for code in Code::ALL {
            let label = CodeLabel { code };
            let _ = m.answers.get_or_create(&label);
            let _ = m.gate_answers.get_or_create(&label);
            let _ = m.registrations.get_or_create(&label);
        }
        for reason in Reason::ALL {
            let _ = m.ring_ends.get_or_create(&ReasonLabel { reason });
        }
        for kind in [Kind::gated, Kind::other] {
            let _ = m.request_seconds.get_or_create(&KindLabel { kind });
        }
        m
    }
}

impl Metrics {
    pub fn answered(&self, code: Code, gated: bool, took: Duration) {
        let kind = if gated { Kind::gated } else { Kind::other };
        if gated {
            self.gate_answers
                .get_or_create(&CodeLabel { code: code.clone() })
                .inc();
        }
        self.answers.get_or_create(&CodeLabel { code }).inc();
        self.request_seconds
            .get_or_create(&KindLabel { kind })
            .observe(took.as_secs_f64());
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String does not fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The content type of [`Metrics::render`].
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_anonchat_names_in_base_units() {
        let m = Metrics::default();
        m.sockets.inc();
        m.rings_started.inc();
        m.ring_ends
            .get_or_create(&ReasonLabel {
                reason: (&RingEnd::AnsweredElsewhere).into(),
            })
            .inc();
        m.relayed_bytes.inc_by(42);
        m.answered(Code::not_found, true, Duration::from_millis(10));
        m.answered(Code::ok, false, Duration::from_micros(200));
        let text = m.render();
        for line in [
            "anonchat_websockets 1",
            "anonchat_rings_started_total 1",
            "anonchat_ring_ends_total{reason=\"answered_elsewhere\"} 1",
            "anonchat_relayed_bytes_total 42",
            "anonchat_gate_answers_total{code=\"not_found\"} 1",
            "anonchat_answers_total{code=\"ok\"} 1",
            "anonchat_request_duration_seconds_count{kind=\"gated\"} 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
        assert!(text.ends_with("# EOF\n"));
    }
}
