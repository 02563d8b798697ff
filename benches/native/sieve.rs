// sieve: sieve of Eratosthenes over an array of booleans, repeated.
fn sieve(n: usize) -> i64 {
    let mut flags = vec![true; n + 1];
    flags[0] = false;
    flags[1] = false;
    let mut i = 2;
    while i * i <= n {
        if flags[i] {
            let mut j = i * i;
            while j <= n {
                flags[j] = false;
                j += i;
            }
        }
        i += 1;
    }
    let mut count = 0;
    for k in 0..=n {
        if flags[k] {
            count += 1;
        }
    }
    count
}

fn main() {
    let n = 1_000_000;
    let reps = 25;
    let mut total: i64 = 0;
    let mut last: i64 = 0;
    for _ in 0..reps {
        last = sieve(n);
        total += last;
    }
    println!("{}", last);
    println!("{}", total);
}
