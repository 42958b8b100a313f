"""Training modes: each turns the belt's state into a brake demand (`base`), built by name
(`catalog`): free, level, ERG (`erg`), speed cap (`speed_cap`), sled and parachute (`sled`)."""
