//! `GET /metrics`: the server's counters in the Prometheus text format.
//! Aggregate counts only (no room, user or stream labels), so the endpoint
//! has bounded output and reveals nothing about any app. So far: how
//! players' RTP left the server (the egress fast path or `rtc`) and what
//! became of each leg's verification.

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::State as AxumState;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::State;

/// The text exposition of every counter.
pub fn render(state: &State) -> String {
    let mut out = String::new();
    if let Some(media) = &state.media {
        let e = media.egress();
        counter(
            &mut out,
            "sfu_egress_rtp_packets_total",
            "RTP packets sent to players, by the path that protected them",
            &[
                ("path=\"fast\"", e.fast_packets),
                ("path=\"rtc\"", e.rtc_packets),
                ("path=\"failed\"", e.fast_failed),
            ],
        );
        counter(
            &mut out,
            "sfu_egress_legs_total",
            "Player legs by the outcome of their fast-path verification",
            &[
                (
                    "outcome=\"verified\",profile=\"aead_aes_128_gcm\"",
                    e.legs_verified_gcm,
                ),
                (
                    "outcome=\"verified\",profile=\"aes_cm_128_hmac_sha1_80\"",
                    e.legs_verified_cm,
                ),
                ("outcome=\"mismatch\"", e.legs_mismatch),
                ("outcome=\"unknown_profile\"", e.legs_unknown_profile),
                ("outcome=\"no_keys\"", e.legs_no_keys),
                ("outcome=\"undecided\"", e.legs_undecided),
            ],
        );
        counter(
            &mut out,
            "sfu_egress_sender_reports_total",
            "RTCP sender reports sent for player legs",
            &[("", e.sender_reports)],
        );
        let l = media.latency();
        let name = "sfu_egress_added_latency_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time from the worker's wake-up with the input (or the publisher worker's receive, for relayed packets) to the sendmmsg that sent each datagram\n# TYPE {name} histogram"
        );
        let mut cumulative = 0;
        for (i, n) in l.buckets.iter().enumerate() {
            cumulative += n;
            match crate::media::latency::BOUNDS_US.get(i) {
                Some(us) => {
                    let _ = writeln!(
                        out,
                        "{name}_bucket{{le=\"{}\"}} {cumulative}",
                        *us as f64 / 1e6
                    );
                }
                None => {
                    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
                }
            }
        }
        let _ = writeln!(out, "{name}_sum {}", l.sum_us as f64 / 1e6);
        let _ = writeln!(out, "{name}_count {}", l.count);
    }
    out
}

fn counter(out: &mut String, name: &str, help: &str, values: &[(&str, u64)]) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
    for (labels, v) in values {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {v}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {v}");
        }
    }
}

pub async fn serve(AxumState(state): AxumState<Arc<State>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        render(&state),
    )
        .into_response()
}
