//! Copy-method placeholders (spec §6): `%NAME%`, case-insensitive, each replaced
//! everywhere.

/// Replaces every `%NAME%` (any case) of `pairs` in `template`.
pub fn fill(template: &str, pairs: &[(&str, &str)]) -> String {
    let mut out = template.to_string();
    for (name, value) in pairs {
        let pat = format!("%{name}%").to_ascii_lowercase();
        let mut result = String::with_capacity(out.len());
        let lower = out.to_ascii_lowercase();
        let mut i = 0;
        while let Some(off) = lower[i..].find(&pat) {
            result.push_str(&out[i..i + off]);
            result.push_str(value);
            i += off + pat.len();
        }
        result.push_str(&out[i..]);
        out = result;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_insensitive_everywhere() {
        assert_eq!(
            fill("a %Dest_Dir% b %DEST_DIR%", &[("DEST_DIR", "/x")]),
            "a /x b /x"
        );
        assert_eq!(fill("%IP%%ip%", &[("IP", "1")]), "11");
        assert_eq!(fill("none", &[("IP", "1")]), "none");
    }
}
