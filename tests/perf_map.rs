//! `VELA_PERF_MAP`: a run with it set leaves `/tmp/perf-<pid>.map` naming
//! each compiled trace function, in the format `perf report` reads.

use std::process::Command;

#[test]
fn perf_map_names_every_compiled_function() {
    let dir = std::env::temp_dir().join(format!("vela-perf-map-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let src = dir.join("hot.vela");
    std::fs::write(
        &src,
        "fn main() {\n    let s = 0\n    for i in 0..100000 {\n        s += i % 7\n    }\n    print(s)\n}\n",
    )
    .expect("write program");
    let child = Command::new(env!("CARGO_BIN_EXE_vela"))
        .args(["--jit=on", "--hot-loop=2", "--jit-stats"])
        .arg(&src)
        .env("VELA_PERF_MAP", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run vela");
    let map = format!("/tmp/perf-{}.map", child.id());
    let out = child.wait_with_output().expect("vela finishes");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "299995\n");
    let stats = String::from_utf8_lossy(&out.stderr);
    assert!(stats.contains("traces compiled 1,"), "the loop was compiled: {stats}");

    let text = std::fs::read_to_string(&map).expect("the map file exists");
    let _ = std::fs::remove_file(&map);
    let _ = std::fs::remove_dir_all(&dir);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "the trace's body and the door every trace is entered through: {text}");
    let mut names = Vec::new();
    for line in &lines {
        let mut parts = line.splitn(3, ' ');
        let start = u64::from_str_radix(parts.next().unwrap_or(""), 16).expect("hex start");
        let size = u64::from_str_radix(parts.next().unwrap_or(""), 16).expect("hex size");
        assert!(start > 0 && size > 0, "{line}");
        names.push(parts.next().unwrap_or(""));
    }
    names.sort();
    assert!(names[0].starts_with("trace1 ") && names[0].contains("hot.vela:3"), "{text}");
    assert!(names[0].ends_with(".body"), "{text}");
    assert_eq!(names[1], "vela.door", "{text}");
}
