//! A few lines of TAP for the examples: `make test` runs each example in the test VM as a
//! test program (`ok N name` / `not ok N name`, a plan, exit 1 on failure).
#![allow(dead_code)]

use std::process::ExitCode;

/// A check's outcome: `Err` carries why it failed.
pub type Check = Result<(), String>;

/// Fails the check with a message unless `cond` holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!("{}:{}: {}", file!(), line!(), format!($($msg)+)));
        }
    };
}

/// Adds context to any error.
pub trait Ctx<T> {
    fn ctx(self, what: &str) -> Result<T, String>;
}

impl<T, E: std::fmt::Display> Ctx<T> for Result<T, E> {
    fn ctx(self, what: &str) -> Result<T, String> {
        self.map_err(|e| format!("{what}: {e}"))
    }
}

/// A named test.
pub type Test<'a> = (&'a str, fn() -> Check);

/// Runs `tests` as one TAP program.
pub fn run(prefix: &str, tests: &[Test<'_>]) -> ExitCode {
    println!("TAP version 13");
    println!("1..{}", tests.len());
    let mut failed = 0;
    for (i, (name, f)) in tests.iter().enumerate() {
        println!("# RUN {prefix}.{name}");
        match std::panic::catch_unwind(f) {
            Ok(Ok(())) => println!("ok {} {prefix}.{name}", i + 1),
            Ok(Err(why)) => {
                failed += 1;
                println!("# {why}");
                println!("not ok {} {prefix}.{name}", i + 1);
            }
            Err(_) => {
                failed += 1;
                println!("not ok {} {prefix}.{name} # panicked", i + 1);
            }
        }
    }
    println!("# Totals: pass:{} fail:{failed} xfail:0 xpass:0 skip:0 error:0", tests.len() - failed);
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Waits for a child with a deadline; kills it when the deadline passes.
pub fn wait_child(child: &mut std::process::Child, secs: u64) -> Result<std::process::ExitStatus, String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return Ok(st),
            Ok(None) if std::time::Instant::now() < deadline => std::thread::sleep(std::time::Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("child {} still running after {secs} s: killed", child.id()));
            }
            Err(e) => return Err(format!("wait: {e}")),
        }
    }
}

/// The same byte pattern everywhere: byte `i` of page `p` of image `seed`.
pub fn pattern(seed: u8, offset: u64, buf: &mut [u8]) {
    for (i, b) in buf.iter_mut().enumerate() {
        let x = offset + i as u64;
        *b = (x as u8).wrapping_mul(13) ^ ((x >> 12) as u8).wrapping_add(seed);
    }
}
