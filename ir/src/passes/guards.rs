//! Redundant-guard elimination: a guard identical to an earlier guard (same
//! opcode, type, operands and immediate; the snapshot does not matter) can
//! never fail, because the earlier one passed on the same values. The first
//! is kept; the value of a later one (`addov`, `unbox`, `sload`, ...) is
//! replaced by the first's.
//!
//! This holds across the `Loop` marker too: a guard in the loop body with the
//! same operand refs as one before the loop checks loop-invariant values, so
//! it is hoisted out of the loop by being removed. Guards read no heap memory
//! (an `sload` reads the stack, which a trace never writes), so no store can
//! make an earlier guard's result stale. `cse::cse_with_guards` runs this and
//! CSE together, which `optimize` uses.

use super::cse::number;
use crate::trace::Trace;

/// Removes every guard identical to an earlier one.
pub fn redundant_guards(t: Trace) -> Trace {
    number(t, false, true)
}

#[cfg(test)]
mod tests {
    use super::redundant_guards;
    use crate::passes::testutil::check;

    #[test]
    fn keeps_the_first_of_identical_guards() {
        check(
            redundant_guards,
            "0000 int > sload #0 S0
             0001 int > sload #0 S1
             0002 flt > sload #0 S1
             0003 int kint 1
             0004 int > addov 0001 0003 S1
             0005 int > addov 0000 0003 S1
             0006 bool ilt 0004 0003
             0007 > gtrue 0006 S2
             0008 > gtrue 0006 S2
             0009 > gfalse 0006 S2
             0010 int kint 1
             0011 int add 0000 0003
             0012 int add 0000 0010
             S0 pc=1 at=0000
             S1 pc=2 at=0001
             S2 pc=3 at=0006 #1=0004 #2=0005
             S3 pc=4 at=0013 #1=0011 #2=0012
             tail S3",
            // A guard of another type on the same slot (it always fails here) and the opposite
            // guard stay; pure instructions and constants are left to `cse`.
            "0000 int > sload #0 S0
             0001 flt > sload #0 S1
             0002 int kint 1
             0003 int > addov 0000 0002 S1
             0004 bool ilt 0003 0002
             0005 > gtrue 0004 S2
             0006 > gfalse 0004 S2
             0007 int kint 1
             0008 int add 0000 0002
             0009 int add 0000 0007
             S0 pc=1 at=0000
             S1 pc=2 at=0001
             S2 pc=3 at=0004 #1=0003 #2=0003
             S3 pc=4 at=0010 #1=0008 #2=0009
             tail S3",
        );
    }

    #[test]
    fn hoists_loop_invariant_guards() {
        check(
            redundant_guards,
            "0000 int > sload #0 S0
             0001 arr > sload #1 S0
             0002 int alen 0001
             0003 bool ilt 0000 0002
             0004 > gtrue 0003 S0
             0005 int kint 1
             0006 int > addov 0000 0005 S0
             0007 loop
             0008 int phi 0006 0012
             0009 > gtrue 0003 S1
             0010 bool ilt 0008 0002
             0011 > gtrue 0010 S1
             0012 int > addov 0008 0005 S1
             S0 pc=1 at=0000
             S1 pc=1 at=0009 #0=0008
             S2 pc=1 at=0013 #0=0012
             tail S2",
            "0000 int > sload #0 S0
             0001 arr > sload #1 S0
             0002 int alen 0001
             0003 bool ilt 0000 0002
             0004 > gtrue 0003 S0
             0005 int kint 1
             0006 int > addov 0000 0005 S0
             0007 loop
             0008 int phi 0006 0011
             0009 bool ilt 0008 0002
             0010 > gtrue 0009 S1
             0011 int > addov 0008 0005 S1
             S0 pc=1 at=0000
             S1 pc=1 at=0009 #0=0008
             S2 pc=1 at=0012 #0=0011
             tail S2",
        );
    }
}
