// sum_loop: tight counted loop with integer accumulation.
fn main() {
    let n: i64 = 100_000_000;
    let mut total: i64 = 0;
    let mut odd: i64 = 0;
    for i in 0..n {
        total += i;
        if i % 3 == 1 {
            odd += 1;
        }
    }
    println!("{}", total);
    println!("{}", odd);
}
