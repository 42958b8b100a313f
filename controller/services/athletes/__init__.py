"""The athlete's side of the machine, around the console: the gym's roster and a class's
leaderboard as the hub publishes them (`feed`), athlete PINs (`pin`), and personal bests
announced the second they happen (`live_bests`)."""
