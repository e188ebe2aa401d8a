//! A minimal TAP test harness. A test returns `Ok(())`, `Err(Failure)` or `Err(Skip)`; a panic
//! counts as a failure.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::ExitCode;

/// Why a test did not pass.
#[derive(Debug)]
pub enum Outcome {
    Fail(String),
    #[allow(dead_code)] // for tests that need something the VM may lack
    Skip(String),
}

pub type TestResult = Result<(), Outcome>;

/// How a child ended (from a `waitpid` status): the only place the Rust tests read a wait
/// status, so that a child killed by a signal never passes for "exit 0".
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    Exited(i32),
    Killed(i32),
    Other(i32),
}

pub fn ended(status: i32) -> Ended {
    if libc::WIFEXITED(status) {
        Ended::Exited(libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        Ended::Killed(libc::WTERMSIG(status))
    } else {
        Ended::Other(status)
    }
}
pub type Test = (&'static str, fn() -> TestResult);

/// Fails the test with a message unless `cond` holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err($crate::harness::Outcome::Fail(format!("{}:{}: {}", file!(), line!(), format!($($msg)+))));
        }
    };
}

/// Fails the test unless the two values are equal.
#[macro_export]
macro_rules! ensure_eq {
    ($left:expr, $right:expr) => {
        match (&$left, &$right) {
            (l, r) => {
                if l != r {
                    return Err($crate::harness::Outcome::Fail(format!(
                        "{}:{}: {} == {}: {:?} != {:?}",
                        file!(), line!(), stringify!($left), stringify!($right), l, r
                    )));
                }
            }
        }
    };
}

/// Turns an `io::Result` into a test failure with context.
pub trait Context<T> {
    fn ctx(self, what: &str) -> Result<T, Outcome>;
}

impl<T, E: std::fmt::Display> Context<T> for Result<T, E> {
    fn ctx(self, what: &str) -> Result<T, Outcome> {
        self.map_err(|e| Outcome::Fail(format!("{what}: {e}")))
    }
}

/// Asserts that a result (`io::Result`, or the crate's `Error`, which keeps its errno) failed
/// with exactly `errno`.
pub fn expect_errno<T: std::fmt::Debug, E: Into<std::io::Error>>(r: Result<T, E>, errno: i32, what: &str) -> TestResult {
    match r.map_err(Into::into) {
        Ok(v) => Err(Outcome::Fail(format!("{what}: succeeded ({v:?}), expected errno {errno}"))),
        Err(e) if e.raw_os_error() == Some(errno) => Ok(()),
        Err(e) => Err(Outcome::Fail(format!("{what}: {e}, expected errno {errno}"))),
    }
}

pub fn run(tests: &[Test], filter: &str) -> ExitCode {
    let selected: Vec<&Test> = tests.iter().filter(|(n, _)| n.contains(filter)).collect();
    println!("TAP version 13");
    println!("1..{}", selected.len());
    let (mut pass, mut fail, mut skip) = (0, 0, 0);
    for (i, (name, f)) in selected.iter().enumerate() {
        let n = i + 1;
        println!("# RUN rust.{name}");
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(Ok(())) => {
                pass += 1;
                println!("ok {n} rust.{name}");
            }
            Ok(Err(Outcome::Skip(why))) => {
                skip += 1;
                println!("ok {n} rust.{name} # SKIP {why}");
            }
            Ok(Err(Outcome::Fail(why))) => {
                fail += 1;
                println!("# {why}");
                println!("not ok {n} rust.{name}");
            }
            Err(_) => {
                fail += 1;
                println!("not ok {n} rust.{name} # panicked");
            }
        }
    }
    println!("# Totals: pass:{pass} fail:{fail} xfail:0 xpass:0 skip:{skip} error:0");
    if fail == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
