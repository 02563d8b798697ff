//! Embedding VelaVM in a Rust application: `cargo run --example embed`.
//!
//! Shows building a `Vm` from a `Config`, running a string and a file, reading
//! and setting globals, calling Vela functions with Rust values, registering
//! Rust closures with typed arguments, the typed `vela::Error`, and the three
//! ways a host stops a runaway script (memory limit, instruction budget,
//! interrupt callback).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use vela::{Config, Error, ErrorKind, Value, Vm};

const SCRIPT: &str = r#"
struct Item { name, price }

fn total(items) {
    let sum = 0.0
    for it in items { sum += it.price }
    return sum
}

fn describe(name, qty) {
    return "${qty} x ${name} (${shout(name)})"
}

// Calls back into the host with a Vela closure.
let discounted = apply_all([10.0, 20.0], fn(p) { return p * (1.0 - settings["discount"]) })
let cart = [Item { name: "tea", price: 4.5 }, Item { name: "cake", price: 3.0 }]
let greeting = "hello, ${user}! ${len(tags)} tags, first ${tags[0]}"
let hyp = hypot(3, 4)
"#;

fn main() -> Result<(), Error> {
    // 1. Build a VM from a Config: 64 MiB heap, everything else default.
    let mut vm = Vm::new(Config { mem_limit: 64 << 20, ..Config::default() });

    // 2. Register Rust closures as Vela functions. Arguments are converted
    //    from Vela values (a wrong type is a Vela runtime error naming the
    //    argument); the return value is converted back.
    vm.register_fn("hypot", |a: f64, b: f64| (a * a + b * b).sqrt());
    vm.register_fn("shout", |s: String| s.to_uppercase());
    vm.register_fn("parse_int", |s: String| -> Result<i64, String> {
        s.trim().parse().map_err(|e| format!("parse_int(\"{s}\"): {e}"))
    });
    // A closure taking `&mut Vm` first can call Vela values back.
    vm.register_fn("apply_all", |vm: &mut Vm, xs: Vec<f64>, f: Value| -> Result<Vec<f64>, Error> {
        xs.into_iter().map(|x| vm.call::<f64>(f, (x,))).collect()
    });

    // 3. Set globals from Rust values (they are visible to scripts run later).
    vm.set("user", "ada");
    vm.set("tags", vec!["new", "vip"]);
    vm.set("settings", BTreeMap::from([("discount", 0.25)]));

    // 4. Evaluate a string.
    vm.run_source(SCRIPT, "shop.vela")?;

    // 5. Read globals as Rust types.
    let greeting: String = vm.get("greeting")?;
    let discounted: Vec<f64> = vm.get("discounted")?;
    println!("greeting   = {greeting}");
    println!("discounted = {discounted:?}");
    println!("hypot(3,4) = {}", vm.get::<f64>("hyp")?);

    // 6. Call Vela functions with Rust arguments.
    let cart = vm.global("cart").expect("cart is defined"); // a Value: valid until the VM runs again
    let total: f64 = vm.call("total", (cart,))?;
    let line: String = vm.call("describe", ("tea", 2))?;
    println!("total      = {total}");
    println!("describe   = {line}");
    println!("max        = {}", vm.call::<i64>("max", [3, 9, 4])?);

    // 7. Run a file (its `main()` runs after the top level; `print` goes to stdout).
    println!("--- examples/hello.vela ---");
    vm.run_file(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/hello.vela"))?;
    println!("---");

    // 8. Errors are typed: kind, message, location and Vela stack trace.
    let err = vm.run_source("let x = 1\nlet y = x +* 2", "broken.vela").unwrap_err();
    assert_eq!(err.kind, ErrorKind::Compile);
    let loc = err.location.as_ref().expect("compile errors have a location");
    println!("compile error at {}:{}:{}: {}", loc.file, loc.line, loc.column, err.message);
    println!("{err}"); // rendered with the source line and a caret

    vm.run_source("fn risky(s) { return parse_int(s) * 2 }\nfn outer(s) { return risky(s) }", "risky.vela")?;
    assert_eq!(vm.call::<i64>("outer", ("21",))?, 42);
    let err = vm.call::<i64>("outer", ("forty",)).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Runtime);
    println!("runtime error: {}", err.message);
    for frame in &err.trace {
        println!("  at {} ({}:{})", frame.function, frame.file, frame.line);
    }

    let err = vm.run_source("hypot(1, \"two\")", "types.vela").unwrap_err();
    println!("argument error: {}", err.message);

    let err = vm.get::<i64>("greeting").unwrap_err();
    assert_eq!(err.kind, ErrorKind::Conversion);
    println!("conversion error: {}", err.message);

    // 9. Stopping runaway scripts.
    // a) Instruction budget: counts every instruction since the VM was made,
    //    so give this run an allowance of one million from now.
    vm.set_instruction_budget(Some(vm.stats().instructions + 1_000_000));
    let err = vm.run_source("let n = 0\nwhile true { n += 1 }", "spin.vela").unwrap_err();
    assert_eq!(err.kind, ErrorKind::Interrupted);
    println!("budget: {} (n reached {})", err.message, vm.get::<i64>("n")?);
    vm.set_instruction_budget(None);

    // b) Interrupt callback: polled at loop headers and calls; here a deadline
    //    (an Arc<AtomicBool> set by another thread works the same way).
    let deadline = Instant::now() + Duration::from_millis(50);
    vm.set_interrupt(move || Instant::now() >= deadline);
    let err = vm.run_source("fn forever() { loop {} }\nforever()", "forever.vela").unwrap_err();
    assert_eq!(err.kind, ErrorKind::Interrupted);
    println!("interrupt: {} in {}", err.message, err.trace[0].function);
    vm.set_interrupt(|| false);

    // c) Memory limit: a runtime error, and the VM stays usable.
    vm.set_memory_limit(8 << 20);
    let err = vm.run_source("let hog = []\nwhile true { hog.push(\"grow ${len(hog)}\") }", "hog.vela").unwrap_err();
    assert_eq!(err.kind, ErrorKind::Runtime);
    println!("memory: {} at line {}", err.message, err.location.as_ref().map_or(0, |l| l.line));
    vm.set("hog", ()); // drop the reference so the next collection frees it
    println!("still usable: total = {}", vm.call::<f64>("total", (vm.global("cart").unwrap(),))?);
    Ok(())
}
