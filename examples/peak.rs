//! The machine's arithmetic limit per unit (same as `mpnn bench --peak`):
//! `cargo run --release --example peak [THREADS]`.
fn main() {
    let threads = std::env::args()
        .nth(1)
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let rows = mpnn::peak::measure(threads, |line| eprintln!("{line}"));
    println!("{}", mpnn::peak::markdown(&rows));
}
