// binary_trees: allocation-heavy construction and traversal of binary trees.
struct Node {
    left: Option<Box<Node>>,
    right: Option<Box<Node>>,
}

fn bottom_up_tree(depth: i64) -> Box<Node> {
    if depth > 0 {
        return Box::new(Node {
            left: Some(bottom_up_tree(depth - 1)),
            right: Some(bottom_up_tree(depth - 1)),
        });
    }
    Box::new(Node { left: None, right: None })
}

fn item_check(tree: &Node) -> i64 {
    match (&tree.left, &tree.right) {
        (Some(l), Some(r)) => 1 + item_check(l) + item_check(r),
        _ => 1,
    }
}

fn main() {
    let n: i64 = std::hint::black_box(15);
    let min_depth = 4;
    let mut max_depth = n;
    if min_depth + 2 > max_depth {
        max_depth = min_depth + 2;
    }

    let stretch_depth = max_depth + 1;
    let stretch = bottom_up_tree(stretch_depth);
    println!("stretch tree of depth {}\t check: {}", stretch_depth, item_check(&stretch));
    drop(stretch);

    let long_lived = bottom_up_tree(max_depth);

    let mut d = min_depth;
    while d <= max_depth {
        let mut iters: i64 = 1;
        for _ in 0..(max_depth - d + min_depth) {
            iters *= 2;
        }
        let mut check = 0;
        for _ in 0..iters {
            check += item_check(&bottom_up_tree(d));
        }
        println!("{}\t trees of depth {}\t check: {}", iters, d, check);
        d += 2;
    }
    println!("long lived tree of depth {}\t check: {}", max_depth, item_check(&long_lived));
}
