//! Replacing a struct method in a later chunk (as the REPL runs each input)
//! invalidates the traces that inlined the old method. `traces/` cannot show
//! this: a file is one chunk, and a method cannot be replaced within one.
//!
//! The chunks run in one VM with the JIT and in one without; every result
//! must agree, and the JIT VM's `--jit-stats` report (`Vm::jit_report`) must
//! show the invalidations and the new traces compiled after them.

use vela::{Config, Value, Vm};

const CHUNKS: &[&str] = &[
    "struct P { x }\nimpl P { fn get(self) { return self.x } }\nlet p = P { x: 2 }\n\
     fn run() {\n let t = 0\n for i in 0..300 { t += p.get() + i % 3 }\n return t\n}\nlet a = run()\n",
    "impl P { fn get(self) { return self.x * 10 } }\nlet b = run()\n",
    "impl P { fn get(self) { return self.x + 1 } }\nlet c = run()\n",
    "impl P { fn get(self) { return -self.x } }\nlet d = run()\n",
];

fn run_chunks(jit: bool) -> (Vec<i64>, Vm) {
    let mut vm = Vm::new(Config { jit, hot_loop: 2, ..Config::default() });
    let mut results = Vec::new();
    for (k, chunk) in CHUNKS.iter().enumerate() {
        vm.run_source(chunk, &format!("<chunk {k}>")).unwrap_or_else(|e| panic!("chunk {k}: {e:?}"));
        let name = ["a", "b", "c", "d"][k];
        match vm.global(name) {
            Some(Value::Int(v)) => results.push(v),
            other => panic!("chunk {k}: `{name}` is {other:?}"),
        }
    }
    (results, vm)
}

/// The `name N` count of the report's summary line.
fn summary_count(report: &str, name: &str) -> u64 {
    let line = report.lines().find_map(|l| l.strip_prefix("jit: traces ")).expect("a summary line");
    let field = line.split(", ").find_map(|f| f.strip_prefix(name).and_then(|r| r.strip_prefix(' ')));
    let field = field.unwrap_or_else(|| panic!("no `{name}` in `{line}`"));
    field.trim().parse().unwrap_or_else(|_| panic!("`{name}` is not a count in `{line}`"))
}

#[test]
fn replacing_an_inlined_method_invalidates_its_traces() {
    let (off, _) = run_chunks(false);
    let (on, vm) = run_chunks(true);
    let sum_mod3: i64 = (0..300).map(|i| i % 3).sum();
    assert_eq!(off, vec![600 + sum_mod3, 6000 + sum_mod3, 900 + sum_mod3, -600 + sum_mod3]);
    assert_eq!(on, off, "the JIT VM computed something else");

    let report = vm.jit_report();
    // One trace per chunk: each replacement dropped the trace that inlined
    // the method it replaced, and `run`'s loop was recorded again (three
    // invalidations are one short of blacklisting the loop).
    assert!(summary_count(&report, "invalidated") >= 3, "{report}");
    assert!(summary_count(&report, "compiled") >= 4, "{report}");
    assert_eq!(summary_count(&report, "blacklisted"), 0, "{report}");
}

#[test]
fn summary_counts_are_read() {
    let r = "jit: traces compiled 4, aborted 0, blacklisted 1, side traces 0, links 0, invalidated 3\n";
    assert_eq!(summary_count(r, "invalidated"), 3);
    assert_eq!(summary_count(r, "compiled"), 4);
    assert_eq!(summary_count(r, "blacklisted"), 1);
}
