// fib: naive doubly recursive Fibonacci (call overhead).
fn fib(n: i64) -> i64 {
    if n < 2 {
        return n;
    }
    fib(n - 1) + fib(n - 2)
}

fn main() {
    // Read the argument through black_box so the call is not constant-folded.
    let n = std::hint::black_box(36);
    println!("{}", fib(n));
}
