// nested_loops: three nested counted loops with integer arithmetic.
fn main() {
    let n: i64 = 454;
    let mut acc: i64 = 0;
    for i in 0..n {
        for j in 0..n {
            let ij = i * j;
            for k in 0..n {
                acc += (ij + k) % 7;
            }
        }
    }
    println!("{}", acc);
}
