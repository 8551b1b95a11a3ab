//! What payload validation costs per message: compiles each built-in catalog schema once, then
//! validates its example (parsed from text, as a publish does) many times, and prints one JSON
//! line per event type plus a summary.
//!
//!     cargo run --release -p hookd --example validation_bench [ITERATIONS]

use std::time::Instant;

fn main() {
    let iterations: u32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let mut total_ns = 0f64;
    let mut slowest = (String::new(), 0f64);
    for et in hookd::catalog::builtin() {
        let name = et.name.clone().unwrap_or_default();
        let schema = hookd::catalog::newest_schema(et.schemas.as_ref())
            .expect("schema")
            .clone();
        let started = Instant::now();
        let validator = hookd::catalog::compile(&schema).expect("compiles");
        let compile_us = started.elapsed().as_secs_f64() * 1e6;
        let text = hookd::catalog::example_of(et.schemas.as_ref(), 0)
            .expect("example")
            .to_string();
        let started = Instant::now();
        for _ in 0..iterations {
            let payload: serde_json::Value = serde_json::from_str(std::hint::black_box(&text)).expect("json");
            assert!(hookd::catalog::violations(&validator, &payload).is_empty());
        }
        let per_ns = started.elapsed().as_nanos() as f64 / iterations as f64;
        total_ns += per_ns;
        if per_ns > slowest.1 {
            slowest = (name.clone(), per_ns);
        }
        println!(
            "{}",
            serde_json::json!({"event_type": name, "payload_bytes": text.len(), "compile_us": (compile_us * 10.0).round() / 10.0, "parse_and_validate_us": (per_ns / 100.0).round() / 10.0})
        );
    }
    println!(
        "{}",
        serde_json::json!({"summary": {"iterations_each": iterations, "mean_parse_and_validate_us": (total_ns / 16.0 / 100.0).round() / 10.0, "slowest": slowest.0, "slowest_us": (slowest.1 / 100.0).round() / 10.0}})
    );
}
