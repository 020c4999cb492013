//! Failure fingerprints: one cause should give one fingerprint, however the message varies
//! from run to run (numbers, hex addresses, temp paths, ids).

/// Longest normalised text kept; causes differ early in the message.
const MAX_LEN: usize = 240;

/// The normalised text of a failure: its type and message (or the first meaningful line of
/// its body, when the message is empty or generic) with numbers, hex, UUIDs and paths
/// masked, whitespace collapsed.
pub fn normalize(kind: Option<&str>, message: Option<&str>, body: Option<&str>) -> String {
    let message = message.filter(|m| !m.trim().is_empty());
    let message = match message {
        Some(m) if !is_generic(m) => m,
        _ => body
            .and_then(first_meaningful_line)
            .or(message)
            .unwrap_or(""),
    };
    let mut out = String::with_capacity(64);
    if let Some(kind) = kind.filter(|k| !k.is_empty()) {
        out.push_str(kind);
        out.push_str(": ");
    }
    let first = message.lines().next().unwrap_or("");
    match location_only(first) {
        // GoogleTest starts a message with the failing assertion's `file:line` alone: the
        // line tells one test's assertions apart, and the next line says what failed.
        Some((file, line)) => {
            mask(file, &mut out);
            out.push(':');
            out.push_str(line);
            let next = message
                .lines()
                .skip(1)
                .map(str::trim)
                .find(|l| !l.is_empty());
            if let Some(next) = next {
                out.push(' ');
                mask(next, &mut out);
            }
        }
        None => mask(first, &mut out),
    }
    if out.len() > MAX_LEN {
        let mut cut = MAX_LEN;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    out
}

/// A line that is only a source location, `file.cc:12` or `file.cc(12)` (MSVC), maybe
/// followed by `: Failure`: (file, line number).
fn location_only(line: &str) -> Option<(&str, &str)> {
    let l = line.trim();
    let l = l
        .strip_suffix(": Failure")
        .unwrap_or(l)
        .trim_end_matches(':');
    let (file, n) = match l.strip_suffix(')') {
        Some(l) => l.rsplit_once('(')?,
        None => l.rsplit_once(':')?,
    };
    // A source file: a known extension (not `127.0.0.1:5432`, `expect.toBe(1)`).
    const SOURCE: &[&str] = &[
        "c", "cc", "cpp", "cxx", "c++", "h", "hh", "hpp", "hxx", "inl", "ipp", "tpp", "tcc", "ixx",
        "cppm", "m", "mm", "cu", "swift", "go", "rs", "zig", "d", "f", "f90", "f95", "java", "kt",
        "kts", "scala", "cs", "py", "rb", "dart", "js", "mjs", "jsx", "ts", "tsx",
    ];
    let file_like = !file.contains(char::is_whitespace)
        && !file.contains("://")
        && file
            .rsplit_once('.')
            .is_some_and(|(_, ext)| SOURCE.contains(&ext.to_ascii_lowercase().as_str()));
    (file_like && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())).then_some((file, n))
}

/// A message that names no cause: gotestsum writes "Failed" for every Go failure, some
/// runners "exit status 1", Boost.Test "failure", Dart's junitreport "1 failure, see
/// stacktrace for details"; the cause is then in the body.
fn is_generic(message: &str) -> bool {
    let m = message
        .trim()
        .trim_end_matches(['.', '!', ':'])
        .to_ascii_lowercase();
    matches!(
        m.as_str(),
        "failed"
            | "fail"
            | "failure"
            | "error"
            | "test failed"
            | "assertion failed"
            | "assertion failure"
    ) || m
        .strip_prefix("exit status ")
        .or_else(|| m.strip_prefix("exit code "))
        .is_some_and(|n| n.chars().all(|c| c.is_ascii_digit()))
        || m.split_once(' ').is_some_and(|(n, rest)| {
            n.bytes().all(|b| b.is_ascii_digit())
                && matches!(
                    rest,
                    "failure, see stacktrace for details" | "failures, see stacktrace for details"
                )
        })
}

/// Whether a normalised failure text says nothing that could tell two causes apart
/// ("Failed", "AssertionError: ", empty): the same such text on several failures is no
/// sign that they share a cause.
pub fn says_nothing(normalized: &str) -> bool {
    const EMPTY_WORDS: [&str; 12] = [
        "failed",
        "fail",
        "failure",
        "error",
        "test",
        "assertion",
        "assertionerror",
        "exception",
        "exit",
        "status",
        "code",
        "errored",
    ];
    normalized
        .split(|c: char| !(c.is_alphabetic() || c == '_'))
        // Two characters say something in scripts where a word is one or two (`超时`).
        .filter(|w| w.chars().count() >= 3 || !w.is_ascii())
        .all(|w| EMPTY_WORDS.contains(&w.to_lowercase().as_str()))
}

/// The body's first line that says something: Go's `=== RUN` / `--- FAIL` markers skipped,
/// and a Go `file_test.go:12: ` location stripped (the same cause in another test or at
/// another line is still the same cause).
fn first_meaningful_line(body: &str) -> Option<&str> {
    // Boost.Test: `ASSERTION FAILURE:`, `- file : …`, `- line : …`, then the cause.
    if let Some(m) = body
        .lines()
        .find_map(|l| l.trim().strip_prefix("- message:"))
    {
        return Some(m.trim());
    }
    body.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .filter(|l| !(l.starts_with("=== ") || l.starts_with("--- ")))
        .filter(|l| !is_generic(l))
        .map(strip_go_location)
        .find(|l| !l.is_empty())
}

fn strip_go_location(line: &str) -> &str {
    let Some((loc, rest)) = line.split_once(": ") else {
        return line;
    };
    match loc.rsplit_once(':') {
        Some((file, n))
            if file.ends_with(".go")
                && !file.contains(char::is_whitespace)
                && !n.is_empty()
                && n.chars().all(|c| c.is_ascii_digit()) =>
        {
            rest.trim()
        }
        _ => line,
    }
}

/// The fingerprint id of a normalised text.
pub fn id(normalized: &str) -> i64 {
    let hash = blake3::hash(normalized.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash.as_bytes()[..8]);
    i64::from_le_bytes(first)
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn mask(text: &str, out: &mut String) {
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let mut last_space = true;
    while i < chars.len() {
        let c = chars[i];
        let at_word_start = i == 0 || !is_word(chars[i - 1]);
        // A path: `/x/y`, `./x`, `C:\x` — up to whitespace or a quote.
        let path_start = (c == '/' && i + 1 < chars.len() && chars[i + 1] != ' ' && at_word_start)
            || (c.is_ascii_alphabetic()
                && at_word_start
                && chars.get(i + 1) == Some(&':')
                && chars.get(i + 2) == Some(&'\\'));
        if path_start {
            let mut j = i;
            while j < chars.len() && !chars[j].is_whitespace() && !"'\"()[]<>,;".contains(chars[j])
            {
                j += 1;
            }
            // A lone `/` between words (e.g. "and/or") is not a path.
            if chars[i..j]
                .iter()
                .filter(|&&ch| ch == '/' || ch == '\\')
                .count()
                >= 2
            {
                out.push_str("<path>");
                i = j;
                last_space = false;
                continue;
            }
        }
        if at_word_start && (c.is_ascii_digit() || (c == '0' && chars.get(i + 1) == Some(&'x'))) {
            let mut j = i;
            let hex = c == '0' && matches!(chars.get(i + 1), Some('x') | Some('X'));
            if hex {
                j += 2;
            }
            while j < chars.len()
                && (chars[j].is_ascii_hexdigit()
                    || chars[j] == '.'
                    || chars[j] == '-'
                    || chars[j] == '_')
            {
                j += 1;
            }
            // Units glued to numbers ("3012ms") stay: they carry meaning.
            let hexy = hex || chars[i..j].iter().any(|ch| ch.is_ascii_alphabetic());
            out.push_str(if hexy { "<hex>" } else { "<n>" });
            i = j;
            last_space = false;
            continue;
        }
        if at_word_start && c.is_ascii_hexdigit() {
            // Long hex runs (hashes, UUID parts, object ids) that contain a digit.
            let mut j = i;
            while j < chars.len() && (chars[j].is_ascii_hexdigit() || chars[j] == '-') {
                j += 1;
            }
            let run = &chars[i..j];
            let ends_word = j == chars.len() || !is_word(chars[j]);
            if ends_word && run.len() >= 8 && run.iter().any(|ch| ch.is_ascii_digit()) {
                out.push_str("<hex>");
                i = j;
                last_space = false;
                continue;
            }
        }
        if c.is_whitespace() {
            if !last_space {
                out.push(' ');
                last_space = true;
            }
        } else {
            out.push(c);
            last_space = false;
        }
        i += 1;
    }
    while out.ends_with(' ') {
        out.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_hex_and_paths_do_not_split_a_cause() {
        let a = normalize(
            Some("java.net.SocketTimeoutException"),
            Some("Timeout after 3012 ms waiting for 0x7f3a2c at /tmp/run-81/sock"),
            None,
        );
        let b = normalize(
            Some("java.net.SocketTimeoutException"),
            Some("Timeout after 45 ms waiting for 0xdeadbeef at /tmp/run-2/sock"),
            None,
        );
        assert_eq!(a, b);
        assert_eq!(
            a,
            "java.net.SocketTimeoutException: Timeout after <n> ms waiting for <hex> at <path>"
        );
        assert_eq!(id(&a), id(&b));
    }

    #[test]
    fn different_causes_stay_apart() {
        let a = normalize(None, Some("expected 3 but was 4"), None);
        let b = normalize(None, Some("connection refused"), None);
        assert_ne!(a, b);
        assert_eq!(a, "expected <n> but was <n>");
    }

    #[test]
    fn falls_back_to_first_body_line_and_masks_ids() {
        let n = normalize(
            None,
            None,
            Some("\n  AssertionError: job 3f2a9c1e-77aa-4b1c-9e0f-1234567890ab failed\n  at x"),
        );
        assert_eq!(n, "AssertionError: job <hex> failed");
    }

    #[test]
    fn a_generic_go_message_gives_way_to_the_cause_in_the_body() {
        let body = |msg: &str| {
            format!("=== RUN   TestPay\n    pay_test.go:41: {msg}\n--- FAIL: TestPay (0.31s)\n")
        };
        let a = normalize(
            Some(""),
            Some("Failed"),
            Some(&body("dial tcp 10.0.0.7:5432: connect: connection refused")),
        );
        assert_eq!(a, "dial tcp <n>:<n>: connect: connection refused");
        let b = normalize(Some(""), Some("Failed"), Some(&body("expected 3, got 4")));
        assert_ne!(a, b, "two causes behind one generic message stay apart");
        // A body with nothing but markers (a Go parent whose subtest failed) keeps the message.
        let parent = normalize(
            None,
            Some("Failed"),
            Some("=== RUN   TestPay\n--- FAIL: TestPay (0.31s)\n"),
        );
        assert_eq!(parent, "Failed");
        // A specific message is kept even with a body.
        assert_eq!(
            normalize(None, Some("connection reset"), Some(&body("x"))),
            "connection reset"
        );
        assert_eq!(
            normalize(None, Some("exit status 1"), Some("panic: nil map")),
            "panic: nil map"
        );
    }

    #[test]
    fn words_and_slashes_survive() {
        let n = normalize(None, Some("read and/or write failed for user2"), None);
        assert_eq!(n, "read and/or write failed for user2");
    }

    #[test]
    fn tools_with_a_constant_message_give_the_cause() {
        // GoogleTest: `file:line` alone, then what failed; two assertions stay apart.
        let a = normalize(
            None,
            Some(
                "test/parser_test.cc:12\nExpected equality of these values:\n  n\n    Which is: 3",
            ),
            None,
        );
        assert_eq!(
            a,
            "test/parser_test.cc:12 Expected equality of these values:"
        );
        let b = normalize(
            None,
            Some("test/parser_test.cc:19\nValue of: ast.root()"),
            None,
        );
        assert_eq!(b, "test/parser_test.cc:19 Value of: ast.root()");
        // An absolute path is a machine's: masked, its line kept.
        assert_eq!(
            normalize(
                None,
                Some("C:\\src\\parser_test.cc(27): Failure\nValue of: ok"),
                None
            ),
            "<path>:27 Value of: ok"
        );
        // Not a location: a time, an address, a URL, a call, words.
        assert_eq!(location_only("12:30"), None);
        assert_eq!(location_only("127.0.0.1:5432"), None);
        assert_eq!(location_only("http://example.com:8080"), None);
        assert_eq!(location_only("file://x/y.cc:8080"), None);
        assert_eq!(location_only("expected.toBe(1)"), None);
        assert_eq!(location_only("log.Fatal(1)"), None);
        assert_eq!(location_only("see x.cc:12 for details"), None);
        // Text in any script says something.
        assert!(!says_nothing("接続が拒否されました"));
        assert!(!says_nothing("соединение отклонено"));
        assert!(!says_nothing("超时"));
        // Boost.Test: `failure`, and the cause on the body's `- message:` line.
        let boost = "ASSERTION FAILURE:\n- file   : parser_test.cpp\n- line   : 12\n- message: check tokens.size() == 4u has failed [3 != 4]\n";
        assert_eq!(
            normalize(Some("assertion error"), Some("failure"), Some(boost)),
            "assertion error: check tokens.size() == <n>u has failed [<n> != <n>]"
        );
        // Dart's junitreport: the cause is the body's first line.
        assert_eq!(
            normalize(
                None,
                Some("1 failure, see stacktrace for details"),
                Some("Bad state: No element\ndart:core List.first")
            ),
            "Bad state: No element"
        );
        // ctest: `Failed` and nothing else says nothing.
        assert!(says_nothing(&normalize(None, Some("Failed"), None)));
        assert!(says_nothing(&normalize(Some("AssertionError"), None, None)));
        assert!(!says_nothing(&a));
        assert!(!says_nothing("connection refused"));
    }
}
