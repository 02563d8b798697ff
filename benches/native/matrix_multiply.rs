// matrix_multiply: dense float matrix product with arrays of arrays.
fn matgen(n: usize, seed: i64) -> Vec<Vec<f64>> {
    let tmp = 1.0 / n as f64 / n as f64;
    let mut m = Vec::with_capacity(n);
    for i in 0..n as i64 {
        let mut row = Vec::with_capacity(n);
        for j in 0..n as i64 {
            row.push(tmp * (i - j + seed) as f64 * (i + j) as f64);
        }
        m.push(row);
    }
    m
}

fn transpose(n: usize, m: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let mut t = Vec::with_capacity(n);
    for i in 0..n {
        let mut row = Vec::with_capacity(n);
        for j in 0..n {
            row.push(m[j][i]);
        }
        t.push(row);
    }
    t
}

fn matmul(n: usize, a: &[Vec<f64>], b: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let bt = transpose(n, b);
    let mut c = Vec::with_capacity(n);
    for i in 0..n {
        let ai = &a[i];
        let mut row = Vec::with_capacity(n);
        for j in 0..n {
            let bj = &bt[j];
            let mut sum = 0.0;
            for (x, y) in ai.iter().zip(bj.iter()) {
                sum += x * y;
            }
            row.push(sum);
        }
        c.push(row);
    }
    c
}

fn main() {
    let n = std::hint::black_box(385usize);
    let a = matgen(n, 0);
    let b = matgen(n, 1);
    let c = matmul(n, &a, &b);
    let mut total = 0.0;
    for i in 0..n {
        for j in 0..n {
            total += c[i][j];
        }
    }
    let half = n / 2;
    println!("{:.9}", c[half][half]);
    println!("{:.9}", total);
}
