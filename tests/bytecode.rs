//! Snapshots of the compiler's bytecode listings (`vela --dump=bytecode`) for
//! a few programs, so any change in code generation shows up in review.
//! Snapshots live in the top-level `snapshots/` folder.

use vela::{Config, Vm};

fn listing(path: &str) -> String {
    let full = format!("{}/{path}", env!("CARGO_MANIFEST_DIR"));
    let source = std::fs::read_to_string(&full).expect("program exists");
    let mut vm = Vm::new(Config::default());
    vm.disassemble(&source, path).expect("program compiles")
}

macro_rules! snapshot {
    ($name:ident, $path:expr) => {
        #[test]
        fn $name() {
            let text = listing($path);
            assert!(text.contains("function <script>"), "listing has the top-level chunk");
            insta::with_settings!({ snapshot_path => "../snapshots", prepend_module_to_snapshot => false }, {
                insta::assert_snapshot!(concat!("bytecode_", stringify!($name)), text);
            });
        }
    };
}

snapshot!(hello, "examples/hello.vela");
snapshot!(fib, "benches/programs/fib.vela");
snapshot!(sum_loop, "benches/programs/sum_loop.vela");
snapshot!(closures_capture_per_iteration, "tests/lang/closures/fresh_binding_per_for_range_iteration.vela");
snapshot!(nbody, "benches/programs/nbody.vela");

#[test]
fn a_struct_literal_writes_the_fields_it_leaves_out_nil() {
    // Every tracked field of every instance is written before it can be
    // read: what the JIT's Float-only fields (`StructDef::float_only`) need.
    let mut vm = Vm::new(Config::default());
    let text = vm.disassemble("struct V { a, b, c }\nlet v = V { b: 1.0 }\n", "<literal>").expect("compiles");
    let inits: Vec<&str> = text.lines().filter(|l| l.contains("InitField")).collect();
    assert_eq!(inits.len(), 3, "{text}");
    for idx in ["idx=1", "idx=0", "idx=2"] {
        assert!(inits.iter().any(|l| l.contains(idx)), "no InitField {idx}:\n{text}");
    }
    assert!(text.contains("LoadNil"), "{text}");
}
