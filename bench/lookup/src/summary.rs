//! What both benchmarks of this crate print: a sample's percentiles and rate, and durations
//! in the unit that reads best.

use std::time::Duration;

pub struct Summary {
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub per_sec: f64,
}

pub fn summarize(mut samples: Vec<Duration>) -> Summary {
    samples.sort();
    let total: Duration = samples.iter().sum();
    let at =
        |p: f64| samples[((samples.len() as f64 * p).ceil() as usize).clamp(1, samples.len()) - 1];
    Summary {
        p50: at(0.50),
        p99: at(0.99),
        max: *samples.last().unwrap_or(&Duration::ZERO),
        per_sec: samples.len() as f64 / total.as_secs_f64().max(1e-9),
    }
}

pub fn us(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 10.0 {
        format!("{us:.2} µs")
    } else if us < 10_000.0 {
        format!("{us:.0} µs")
    } else {
        format!("{:.1} ms", us / 1000.0)
    }
}
