//! The info blocks the tools print before they act (2.2.1's Perl `format`s): ` <label>:
//! <value>`, the label left-aligned in a fixed width, the value cut at its field's width,
//! trailing spaces removed.

/// One line: label width 31 and value width 46 for mmm_clone, 22 and 55 for mmm_restore.
pub fn line(label: &str, value: &str, label_width: usize, value_width: usize) -> String {
    let label: String = label.chars().take(label_width).collect();
    let value: String = value.chars().take(value_width).collect();
    let l = format!(" {label:<label_width$}: {value}");
    l.trim_end_matches(' ').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perl_format() {
        assert_eq!(
            line("Source host", "db1", 31, 46),
            " Source host                    : db1"
        );
        assert_eq!(line("Dry run", "", 22, 55), " Dry run               :");
        assert_eq!(line("x", &"v".repeat(60), 3, 5), " x  : vvvvv");
    }
}
