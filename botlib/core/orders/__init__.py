"""The order books: every order written down before it is sent, fills booked once, the venue's
positions and open orders reconciled, and the protective stop that rests at the venue."""
