// spectral_norm: power method on the infinite matrix A(i,j) = 1/((i+j)(i+j+1)/2+i+1).
fn a(i: i64, j: i64) -> f64 {
    let ij = i + j;
    1.0 / ((ij * (ij + 1) / 2 + i + 1) as f64)
}

fn mul_av(n: usize, v: &[f64], av: &mut [f64]) {
    for i in 0..n {
        let mut sum = 0.0;
        for j in 0..n {
            sum += a(i as i64, j as i64) * v[j];
        }
        av[i] = sum;
    }
}

fn mul_atv(n: usize, v: &[f64], atv: &mut [f64]) {
    for i in 0..n {
        let mut sum = 0.0;
        for j in 0..n {
            sum += a(j as i64, i as i64) * v[j];
        }
        atv[i] = sum;
    }
}

fn mul_atav(n: usize, v: &[f64], out: &mut [f64], tmp: &mut [f64]) {
    mul_av(n, v, tmp);
    mul_atv(n, tmp, out);
}

fn main() {
    let n = 750;
    let mut u = vec![1.0f64; n];
    let mut v = vec![0.0f64; n];
    let mut tmp = vec![0.0f64; n];
    for _ in 0..10 {
        mul_atav(n, &u, &mut v, &mut tmp);
        mul_atav(n, &v, &mut u, &mut tmp);
    }
    let mut vbv = 0.0;
    let mut vv = 0.0;
    for i in 0..n {
        vbv += u[i] * v[i];
        vv += v[i] * v[i];
    }
    println!("{:.9}", (vbv / vv).sqrt());
}
