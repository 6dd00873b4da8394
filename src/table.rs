//! Plain aligned tables for the terminal.

/// Print `rows` under `header`, each column as wide as its widest cell.
pub fn print(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let out: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out!("{}", out.join("  ").trim_end());
    };
    line(header.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}

/// A time in Unix milliseconds as a UTC date and time,
/// `2026-12-01 11:21:24Z`: what a person reads, where raw milliseconds
/// would need a calculator.
pub fn date(ms: i64) -> String {
    kaizen_host::store::format_time(ms)
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates_read_as_dates() {
        assert_eq!(super::date(0), "1970-01-01 00:00:00Z");
        assert_eq!(super::date(951_782_400_000), "2000-02-29 00:00:00Z");
        assert_eq!(super::date(1_796_124_084_999), "2026-12-01 11:21:24Z");
        assert_eq!(super::date(-1000), "1969-12-31 23:59:59Z");
    }
}
