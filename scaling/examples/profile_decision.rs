//! Runs one 1,000-pod CPU decision in a loop, for `perf record`. Not a benchmark:
//! the figures come from `cargo bench -p scaling`.

#[path = "../benches/decision.rs"]
#[allow(dead_code)]
mod bench;

fn main() {
    let input = if std::env::args().any(|a| a == "--unsorted") {
        bench::unsorted_workload(1_000)
    } else {
        bench::workload(1_000)
    };
    let mut total = 0i64;
    for _ in 0..20_000 {
        let d = scaling::decide(std::hint::black_box(&input), |_| Ok(()));
        total += i64::from(d.desired_replicas);
    }
    println!("{total}");
}
