//! The benchmark workload generator (`gen-events`) writes byte for byte what the peers' published
//! generator (`gen_events.py`, Python 3.11) writes, so the README's figures compare with theirs. The
//! expected digests were recorded once from the Python script with the same arguments; the README's
//! full workload (`20000 --seed 7`: 254,779,448 bytes, SHA-256 a0c5e395…598baa) was checked the same way.

use std::process::Command;

use auditstream_e2e::gen_events::{py_round2, write_float_repr, PyRandom, Seed, Workload, NV_MAGICCONST};
use sha2::{Digest, Sha256};

fn gen_events(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_gen-events")).args(args).output().expect("gen-events runs")
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn output_is_byte_for_byte_the_python_generators() {
    // (arguments, size in bytes, SHA-256) of `python3 gen_events.py ARGS`.
    let cases: &[(&[&str], usize, &str)] = &[
        (&["20", "--seed", "1"], 185_564, "dde920551df85412c02295f8d68ab5eacaa5b8f7a66584b0418d0cf047474652"),
        (&["50", "--seed", "7"], 553_174, "8c16dbc292611e7b2e70e90490de8d50878308736523a5dd02e6cb1bb827c5b6"),
        // Seeds beyond one 32-bit word, negative and zero: the key is abs(seed) in 32-bit words.
        (&["30", "--seed", "123456789012345678901234567890"], 341_038, "1fbd481143ef54c0a3706486c819ffd14cad723014a23c30f5a4f55af4b5a63a"),
        (&["40", "--seed", "-5"], 667_001, "1f68f66aeae1483f4ed43577694a3ff8c9e0bbd7ef3aa0e19d17e3516681fb47"),
        (&["60", "--seed", "0"], 563_389, "c68f54a4c71bf4853185545ac1bc269d86ae9b9d9e4c947c8a393f267f7d29f0"),
        (&["1", "--seed", "4294967296"], 11_257, "7046461bf2bf0fdb360517cb0ede0aec9d5ceb0b431d94999b740bf3a439c593"),
        // The size cap.
        (&["200", "--seed", "3", "--max-kb", "5"], 1_184_162, "93037e163a6fe93d21dfc7c608d7a84e7df6c8a6cab440d93246a6124d7106aa"),
        // Small events, many lines: two line totals below 1e-4, written `1.7292429129844855e-05` and `7.982445501486524e-06`.
        (&["3000", "--seed", "5", "--max-kb", "0.01"], 14_156_438, "fc7275c9a2271acdd6485d531edffb4c1321c88ebc4372f9d2a93cbebfc50f77"),
    ];
    for (args, size, sha256) in cases {
        let output = gen_events(args);
        assert!(output.status.success(), "gen-events {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        assert_eq!((output.stdout.len(), sha256_hex(&output.stdout).as_str()), (*size, *sha256), "gen-events {args:?}");
    }
}

#[test]
fn the_exponent_form_appears_where_python_puts_it() {
    let output = gen_events(&["3000", "--seed=5", "--max-kb=0.01"]);
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains(r#""total":1.7292429129844855e-05,"#) && text.contains(r#""total":7.982445501486524e-06,"#));
}

#[test]
fn the_library_writes_what_the_binary_writes() {
    let mut workload = Workload::new(25);
    workload.seed = Seed::from_i64(7);
    let mut in_process = Vec::new();
    workload.write_to(&mut in_process).unwrap();
    assert_eq!(in_process, gen_events(&["25", "--seed", "7"]).stdout);
    assert_eq!(in_process.iter().filter(|&&b| b == b'\n').count(), 25);
}

#[test]
fn random_is_cpythons_random() {
    // random.Random(7): three random(), getrandbits(32), getrandbits(40), randint(1, 10**9),
    // choice("abcde"), lognormvariate(1.8, 1.3).
    let mut r = PyRandom::new(&Seed::from_i64(7));
    assert_eq!([r.random(), r.random(), r.random()], [0.32383276483316237, 0.15084917392450192, 0.6509344730398537]);
    assert_eq!(r.getrandbits(32), 311_111_475);
    assert_eq!(r.getrandbits(40), 591_937_865_764);
    assert_eq!(r.randint(1, 1_000_000_000), 101_071_365);
    assert_eq!(r.choice(&["a", "b", "c", "d", "e"]), "c");
    assert_eq!(r.lognormvariate(1.8, 1.3), 46.7470185051939);
    // A seed of two 32-bit words; a negative seed is its absolute value.
    let mut r = PyRandom::new(&Seed::parse("1099511627779").unwrap());
    assert_eq!([r.random(), r.random()], [0.21978710637116716, 0.5494687768352203]);
    assert_eq!(PyRandom::new(&Seed::from_i64(-7)).random(), 0.32383276483316237);
    assert_eq!(Seed::parse("1_099_511_627_779"), Seed::parse("+1099511627779"));
    assert_eq!(Seed::parse("7x"), None);
}

#[test]
fn nv_magicconst_is_pythons() {
    // random.NV_MAGICCONST = 4 * exp(-0.5) / sqrt(2.0), computed at run time as Python does.
    let computed = 4.0 * std::hint::black_box(-0.5f64).exp() / std::hint::black_box(2.0f64).sqrt();
    assert_eq!(computed.to_bits(), NV_MAGICCONST.to_bits());
}

#[test]
fn floats_are_written_as_json_dumps_writes_them() {
    // json.dumps(x) in Python for each value.
    let cases: &[(f64, &str)] = &[
        (0.0, "0.0"),
        (-0.0, "-0.0"),
        (1.0, "1.0"),
        (0.01, "0.01"),
        (1000.0, "1000.0"),
        (12.3, "12.3"),
        (999.99, "999.99"),
        (6.890071942033948e-05, "6.890071942033948e-05"),
        (7.982445501486524e-06, "7.982445501486524e-06"),
        (0.0001, "0.0001"),
        (0.00012345, "0.00012345"),
        (1e16, "1e+16"),
        (9999999999999998.0, "9999999999999998.0"),
        (1.5e-05, "1.5e-05"),
        (123456789012345.67, "123456789012345.67"),
        (1e22, "1e+22"),
        (f64::MAX, "1.7976931348623157e+308"),
        (5e-324, "5e-324"),
        (-2.5e-7, "-2.5e-07"),
    ];
    for (x, expected) in cases {
        let mut out = Vec::new();
        write_float_repr(*x, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), *expected, "{x:e}");
    }
}

#[test]
fn rounding_to_two_places_is_pythons() {
    // round(x, 2) in Python: the exact binary value rounded, ties to even.
    let cases: &[(f64, f64)] = &[(0.125, 0.12), (0.375, 0.38), (2.675, 2.67), (1.005, 1.0), (999.995, 1000.0), (0.005, 0.01), (0.015, 0.01), (0.025, 0.03)];
    for (x, expected) in cases {
        assert_eq!(py_round2(*x), *expected, "round({x}, 2)");
    }
}

#[test]
fn bad_arguments_are_refused_with_the_usage() {
    for args in [&["--seed", "7"][..], &["ten"], &["10", "--seed", "x"], &["10", "--max-kb"], &["10", "11"]] {
        let output = gen_events(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "gen-events {args:?}: {stderr}");
        assert!(stderr.contains("usage: gen-events N"), "gen-events {args:?}: {stderr}");
        assert!(output.stdout.is_empty(), "gen-events {args:?}");
    }
}
