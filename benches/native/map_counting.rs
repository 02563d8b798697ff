// map_counting: frequency counting in hash maps with string and integer keys.
use std::collections::HashMap;

fn main() {
    let n: i64 = 16_000_000;
    let vocab: Vec<String> = (0..1000).map(|i| format!("w{}", i)).collect();
    let mut words: HashMap<String, i64> = HashMap::new();
    let mut nums: HashMap<i64, i64> = HashMap::new();
    let mut seed: i64 = 42;
    for _ in 0..n {
        seed = seed * 16807 % 2147483647;
        let w = &vocab[(seed % 1000) as usize];
        if let Some(c) = words.get_mut(w.as_str()) {
            *c += 1;
        } else {
            words.insert(w.clone(), 1);
        }
        let k = seed % 5003;
        *nums.entry(k).or_insert(0) += 1;
    }
    println!("{} {}", words.len(), nums.len());
    println!("{} {} {}", words["w0"], words["w1"], words["w999"]);
    println!("{} {} {}", nums[&0], nums[&1], nums[&5002]);
    let mut cs: i64 = 0;
    for (k, c) in nums.iter() {
        cs = (cs + k * c) % 1000000007;
    }
    let mut maxc = 0;
    for (_, &c) in words.iter() {
        if c > maxc {
            maxc = c;
        }
    }
    println!("{} {}", cs, maxc);
    for k in 0..5003 {
        if let Some(&c) = nums.get(&k) {
            if c % 2 == 1 {
                nums.remove(&k);
            }
        }
    }
    println!("{}", nums.len());
}
