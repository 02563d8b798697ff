//! Compiles one trace, given as its textual IR (as `vela --dump=ir` prints
//! it), many times and prints the compile time: for measuring the back end.
//!
//! `cargo run --release --example compile_ir -- FILE [N]`

use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: compile_ir FILE [N]");
    let n: usize = args.next().map(|s| s.parse().expect("N is a number")).unwrap_or(50);
    let text = std::fs::read_to_string(&path).expect("readable IR file");
    let trace = vela_ir::parse(&text).expect("valid IR");
    let mut times = Vec::with_capacity(n);
    for k in 0..=n {
        let t0 = Instant::now();
        let code = vela::jit::backend::compile(&trace, &format!("t{k}")).expect("compiles");
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        drop(code);
        if k == 0 {
            println!("first compile (with LLVM's set-up): {ms:.2} ms");
        } else {
            times.push(ms);
        }
    }
    times.sort_by(f64::total_cmp);
    println!("{} instructions: median {:.2} ms, min {:.2} ms over {n}", trace.len(), times[n / 2], times[0]);
}
