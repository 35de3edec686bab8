//! Idle cost and wake-up latency of a PMD, per idle policy.
//!
//! For each policy: start a switch with one PMD and two memory ports, let
//! it idle, measure the process's CPU time over a few seconds (the main
//! thread sleeps meanwhile), then send single frames after idle gaps and
//! time how long each takes to come out of the other port.
//! `cargo bench -p benches --bench idle`

use std::time::{Duration, Instant};

use dataplane::sys::process_cpu_time_ns;
use dataplane::testing::{frame, guest, mac};
use dataplane::{IdlePolicy, Packet, PmdConfig, PortId, Switch, SwitchSpec, VlanMode};

/// The PMD runs on the last CPU, the generator (this thread) on CPU 0,
/// so neither waits for the other to be preempted.
fn pmd_core() -> Option<usize> {
    static CORE: std::sync::OnceLock<Option<usize>> = std::sync::OnceLock::new();
    // Read before the main thread pins itself (the count follows affinity).
    *CORE.get_or_init(|| {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        (n > 1).then_some(n - 1)
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn measure(name: &str, idle: IdlePolicy, idle_secs: u64, samples: usize) {
    let spec = SwitchSpec {
        ports: vec![guest(1, VlanMode::Access(1)), guest(2, VlanMode::Access(1))],
        ..Default::default()
    };
    let cfg = PmdConfig {
        idle,
        core: pmd_core(),
        ..PmdConfig::default()
    };
    let mut sw = Switch::start(spec, &[cfg]).expect("switch starts");
    let mut p1 = sw.attach_mem_port(PortId(1), 64).expect("attach");
    let mut p2 = sw.attach_mem_port(PortId(2), 64).expect("attach");
    std::thread::sleep(Duration::from_millis(300));

    let cpu0 = process_cpu_time_ns();
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(idle_secs));
    let cpu = (process_cpu_time_ns() - cpu0) as f64 / t0.elapsed().as_nanos() as f64;

    let f = frame(mac(2), mac(1), &[], b"wake");
    let mut lat = Vec::with_capacity(samples);
    let mut out = Vec::new();
    for _ in 0..samples {
        std::thread::sleep(Duration::from_millis(5));
        let t = Instant::now();
        assert!(p1.send(0, Packet::from_frame(&f)).is_ok());
        loop {
            out.clear();
            if p2.recv_all(&mut out) > 0 {
                break;
            }
            std::hint::spin_loop();
            assert!(t.elapsed() < Duration::from_secs(1), "frame never arrived");
        }
        lat.push(t.elapsed());
    }
    lat.sort();
    let slow = lat
        .iter()
        .filter(|d| **d > Duration::from_millis(2))
        .count();
    if slow > 0 {
        println!("{name}: {slow} of {samples} wake-ups took over 2 ms");
    }
    println!(
        "{name:<10} idle CPU {:>6.2}% of a core | wake-up latency p50 {:>7.1?} p99 {:>7.1?} max {:>7.1?} ({samples} samples)",
        cpu * 100.0,
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat[lat.len() - 1],
    );
    sw.shutdown();
}

/// The platform's floor: one thread blocked in poll(2) on an eventfd, the
/// other writes it and times until the sleeper reports back. No switch.
fn platform_wake_floor(samples: usize) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    let bell = Arc::new(dataplane::doorbell::Doorbell::new().expect("eventfd"));
    let woke = Arc::new(AtomicU64::new(0));
    let (b2, w2) = (bell.clone(), woke.clone());
    let t = std::thread::spawn(move || {
        if let Some(c) = pmd_core() {
            dataplane::sys::pin_current_thread(c);
        }
        for i in 1..=samples as u64 {
            while !dataplane::sys::poll_readable(&[b2.fd()], 1000).unwrap_or(false) {}
            b2.disarm();
            w2.store(i, Ordering::Release);
        }
    });
    let mut lat = Vec::with_capacity(samples);
    for i in 1..=samples as u64 {
        std::thread::sleep(Duration::from_millis(5));
        let t0 = Instant::now();
        bell.ring();
        while woke.load(Ordering::Acquire) < i {
            std::hint::spin_loop();
        }
        lat.push(t0.elapsed());
    }
    t.join().expect("sleeper");
    lat.sort();
    println!(
        "{:<10} (eventfd + poll between two threads, no switch)      wake-up latency p50 {:>7.1?} p99 {:>7.1?} max {:>7.1?}",
        "platform",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat[lat.len() - 1],
    );
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let _ = pmd_core();
    dataplane::sys::pin_current_thread(0);
    println!("generator on CPU 0, PMD on CPU {:?}", pmd_core());
    let (secs, samples) = if quick { (1, 50) } else { (3, 300) };
    platform_wake_floor(samples);
    measure("adaptive", IdlePolicy::adaptive(), secs, samples);
    measure("busy", IdlePolicy::Busy, secs, samples);
}
