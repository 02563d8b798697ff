//! Criterion benches: each program of `benches/programs/` run in-process by
//! the interpreter (output discarded). `benches/compare` is the cross-engine
//! comparison; this is for tracking VelaVM's own changes.

use criterion::{criterion_group, criterion_main, Criterion};
use vela::{Config, Vm};

fn programs(c: &mut Criterion) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/programs");
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .expect("benches/programs exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "vela"))
        .collect();
    paths.sort();
    let mut group = c.benchmark_group("interpreter");
    group.sample_size(10);
    for path in paths {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let source = std::fs::read_to_string(&path).unwrap();
        group.bench_function(&name, |b| {
            b.iter(|| {
                let mut vm = Vm::new(Config { jit: false, ..Config::default() });
                vm.set_output(Box::new(std::io::sink()));
                vm.run_source(&source, &name).expect("benchmark program runs");
            })
        });
    }
    group.finish();
}

criterion_group!(benches, programs);
criterion_main!(benches);
