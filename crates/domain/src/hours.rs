//! Weekly working hours: whether a stretch of time lies within them.

/// Minutes in a day: a window that ends here continues into the next day's.
const DAY: u32 = 24 * 60;

/// Whether the `duration_min` minutes from `minute` of `weekday` (0 = Monday) lie within
/// `windows`, each `(weekday, start minute, end minute)` in one time zone. Windows that meet
/// chain, across midnight too: hours of 08:00–12:00 and 12:00–18:00 take 11:00–13:00, and
/// hours round the clock take a cleaning from 23:00 to 01:00.
pub fn covers(
    windows: &(impl Iterator<Item = (u8, u16, u16)> + Clone),
    weekday: u8,
    minute: u32,
    duration_min: u32,
) -> bool {
    let (mut weekday, mut from, mut left) = (weekday, minute, duration_min);
    // Each turn moves `from` to the end of a window past it, so `left` shrinks every turn.
    loop {
        let reach = windows
            .clone()
            .filter(|&(day, start, end)| {
                day == weekday && u32::from(start) <= from && from < u32::from(end)
            })
            .map(|(_, _, end)| u32::from(end))
            .max();
        let Some(end) = reach else {
            return false;
        };
        if from + left <= end {
            return true;
        }
        left -= end - from;
        from = end;
        if end >= DAY {
            weekday = (weekday + 1) % 7;
            from = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn week(windows: &[(u8, u16, u16)]) -> impl Iterator<Item = (u8, u16, u16)> + Clone + '_ {
        windows.iter().copied()
    }

    #[test]
    fn a_stretch_inside_one_window_is_covered_and_one_past_its_end_is_not() {
        let hours = [(0, 8 * 60, 18 * 60)];
        assert!(covers(&week(&hours), 0, 8 * 60, 600));
        assert!(covers(&week(&hours), 0, 10 * 60, 120));
        assert!(!covers(&week(&hours), 0, 17 * 60, 120));
        assert!(!covers(&week(&hours), 0, 7 * 60 + 59, 30));
        assert!(!covers(&week(&hours), 1, 10 * 60, 30), "another day");
    }

    #[test]
    fn windows_that_meet_chain_and_a_gap_breaks_the_chain() {
        let split = [(0, 8 * 60, 12 * 60), (0, 12 * 60, 18 * 60)];
        assert!(covers(&week(&split), 0, 11 * 60, 120));
        let gap = [(0, 8 * 60, 12 * 60), (0, 13 * 60, 18 * 60)];
        assert!(!covers(&week(&gap), 0, 11 * 60, 120));
        // Overlapping windows chain through the one that reaches furthest.
        let overlapping = [
            (0, 8 * 60, 12 * 60),
            (0, 9 * 60, 14 * 60),
            (0, 14 * 60, 16 * 60),
        ];
        assert!(covers(&week(&overlapping), 0, 8 * 60, 480));
        assert!(!covers(&week(&overlapping), 0, 8 * 60, 481));
    }

    #[test]
    fn hours_round_the_clock_take_a_stretch_across_midnight_and_the_week_wraps() {
        let always: Vec<(u8, u16, u16)> = (0..7).map(|day| (day, 0, 24 * 60)).collect();
        assert!(covers(&week(&always), 0, 23 * 60, 120));
        assert!(
            covers(&week(&always), 6, 23 * 60 + 30, 60),
            "Sunday into Monday"
        );
        // Monday ends at midnight but Tuesday starts at 08:00: not across.
        let monday_late = [(0, 20 * 60, 24 * 60), (1, 8 * 60, 12 * 60)];
        assert!(covers(&week(&monday_late), 0, 22 * 60, 120));
        assert!(!covers(&week(&monday_late), 0, 23 * 60, 120));
        assert!(!covers(&week(&[]), 0, 0, 1));
    }
}
