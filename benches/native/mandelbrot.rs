// mandelbrot: float-heavy escape-time loop on an N x N grid.
fn main() {
    let n: i64 = 1000;
    let max_iter: i64 = 50;
    let mut inside: i64 = 0;
    let mut iters: i64 = 0;
    for y in 0..n {
        let ci = 2.0 * y as f64 / n as f64 - 1.0;
        for x in 0..n {
            let cr = 2.0 * x as f64 / n as f64 - 1.5;
            let mut zr = 0.0f64;
            let mut zi = 0.0f64;
            let mut escaped = false;
            let mut i = 0;
            while i < max_iter {
                let nzr = zr * zr - zi * zi + cr;
                zi = 2.0 * zr * zi + ci;
                zr = nzr;
                i += 1;
                if zr * zr + zi * zi > 4.0 {
                    escaped = true;
                    break;
                }
            }
            iters += i;
            if !escaped {
                inside += 1;
            }
        }
    }
    println!("{}", inside);
    println!("{}", iters);
}
