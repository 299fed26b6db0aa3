"""Making benchmark sets and leaderboard files: copy benchmarks, the TLL submission.

May import every other pipeline package.
"""
