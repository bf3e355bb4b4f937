// Package participantepython holds the example participant written in
// Python (participante.py, the marca service) and the integration test that
// runs it against the real broker with commands encoded as the coordinator
// encodes them. docs/python-participant.md walks through it.
package participantepython
