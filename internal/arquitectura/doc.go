// Package arquitectura holds no code: its test checks the dependency rules of
// docs/architecture.md against what the packages really import.
package arquitectura
