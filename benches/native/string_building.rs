// string_building: string concatenation, interpolation, join and byte access.
fn main() {
    let rounds: i64 = 15000;
    let mut total_len: i64 = 0;
    let mut h: i64 = 0;
    for r in 0..rounds {
        let mut parts: Vec<String> = Vec::new();
        for i in 0..100i64 {
            parts.push(format!("k{}={}", i, (i * 7 + r) % 13));
        }
        let mut line = parts.join(",");
        let mut s = String::new();
        for i in 0..30i64 {
            s = s + "ab" + &(i % 10).to_string();
        }
        line = line + ";" + &s;
        total_len += line.len() as i64;
        let bytes = line.as_bytes();
        for j in 0..bytes.len() {
            h = (h * 31 + bytes[j] as i64) % 1000000007;
        }
    }
    println!("{}", total_len);
    println!("{}", h);
}
