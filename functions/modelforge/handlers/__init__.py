"""Lambda entry points. Each is thin: parse the event into a model, call one logic function, shape the answer."""
