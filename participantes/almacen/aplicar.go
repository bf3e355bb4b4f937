package almacen

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/alpespartner/sagas/eventos"
	"github.com/alpespartner/sagas/internal/mysqltx"
	"github.com/alpespartner/sagas/participantes/bandeja"
	"github.com/alpespartner/sagas/participantes/servicio"
)

// intentosTransaccion bounds the runs of one command's transaction when the
// database asks for another (deadlock, busy).
const intentosTransaccion = 5

// Comando is a decoded, valid command to apply.
type Comando struct {
	Operacion *servicio.Operacion
	// Peticion is what the operation's functions get; Peticion.Comando is
	// the command itself. The store sets Ahora.
	Peticion servicio.Peticion
	// ErrDatos is the error decoding the command's data, if any.
	ErrDatos error
	// Fallo is the reason of an injected failure; empty when none.
	Fallo string
	// Primera: the command's first delivery, of its first attempt. Its
	// step most likely has no inbox row yet, and on MySQL an action is then
	// applied in one round trip (aplicarEnUnViaje).
	Primera bool
}

func (c *Comando) entrada(previos map[string]bandeja.Registro, ahora time.Time) bandeja.Entrada {
	cmd := c.Peticion.Comando
	return bandeja.Entrada{
		SagaID: cmd.SagaID, Paso: cmd.Paso, Accion: cmd.Accion, Comando: cmd.Nombre(), Clave: cmd.ClaveIdempotencia,
		Previos: previos, ErrDatos: c.ErrDatos, Fallo: c.Fallo, Ahora: ahora,
	}
}

func (c *Comando) paso() clavePaso {
	cmd := c.Peticion.Comando
	return clavePaso{cmd.SagaID, cmd.Paso, cmd.Nombre()}
}

// ErrInvalido marks a command the store refuses before writing anything: a
// value longer than its inbox column. It is permanent (the same command
// fails the same way on every delivery), so the consumer dead-letters it.
var ErrInvalido = errors.New("valor que el almacén del participante no admite")

// validar checks c against the inbox columns, in characters as MySQL
// counts them, on both stores alike.
func (c *Comando) validar() error {
	cmd := c.Peticion.Comando
	for _, v := range []struct {
		campo string
		valor string
		max   int
	}{
		{"saga_id", cmd.SagaID, MaxSagaID},
		{"paso", cmd.Paso, MaxPaso},
		{"comando", cmd.Nombre(), MaxComando},
		{"clave_idempotencia", cmd.ClaveIdempotencia, MaxClave},
	} {
		if n := utf8.RuneCountInString(v.valor); n > v.max {
			return fmt.Errorf("%w: %s de %d caracteres (máximo %d)", ErrInvalido, v.campo, n, v.max)
		}
	}
	return nil
}

// ErrNegocioEnLote aborts a batch in which an action or compensation failed
// for a business reason: without a savepoint per command its partial writes
// cannot be undone alone, so the batch must run again one command at a time.
var ErrNegocioEnLote = errors.New("fallo de negocio dentro de un lote")

// Aplicar decides one command in its own transaction: it locks the step,
// reads its inbox rows, applies the bandeja decision (the effect, if any,
// behind a savepoint so that a business failure leaves none) and records the
// reply. It runs the transaction again when the database asks for it, and
// resolves a race with another instance by returning the reply that instance
// recorded. A decision that records nothing (a redelivery, a failed
// compensation) is rolled back. On MySQL an action on its first delivery
// (Comando.Primera) first takes aplicarEnUnViaje.
func (a *Almacen) Aplicar(ctx context.Context, c Comando) (bandeja.Decision, error) {
	if err := c.validar(); err != nil {
		return bandeja.Decision{}, err
	}
	if a.apuesta([]Comando{c}) {
		if ds, err := a.aplicarEnUnViaje(ctx, []Comando{c}); err == nil {
			return ds[0], nil
		}
	}
	for intento := 1; ; intento++ {
		d, err := a.aplicarUno(ctx, &c)
		switch {
		case err == nil:
			return d, nil
		case errors.Is(err, errYaRegistrado):
			return a.registradaPorOtra(ctx, &c, err)
		case a.d.reintentable(err) && intento < intentosTransaccion:
			select {
			case <-time.After(time.Duration(intento*intento) * 10 * time.Millisecond):
			case <-ctx.Done():
				return bandeja.Decision{}, errors.Join(err, ctx.Err())
			}
		default:
			return bandeja.Decision{}, err
		}
	}
}

func (a *Almacen) aplicarUno(ctx context.Context, c *Comando) (bandeja.Decision, error) {
	var d bandeja.Decision
	err := a.escribir(ctx, func(tx *sql.Tx) (bool, error) {
		// On MySQL the effect's savepoint travels with the lock and the
		// inbox read (one round trip less); it costs nothing when unused.
		// On SQLite, in process, it is taken only for an action.
		temprano := a.d.nombre == MySQL
		t := a.transaccion(tx, efectoAislado(temprano))
		inbox, err := a.bloquearYLeer(ctx, t.tx, []clavePaso{c.paso()}, t.ahora, temprano)
		if err != nil {
			return false, err
		}
		cmd := c.Peticion.Comando
		if d, err = t.decidir(ctx, c, inbox[pasoDe(cmd.SagaID, cmd.Paso)]); err != nil || !d.Registrar {
			return false, err
		}
		// The last statement: it commits too (MySQL, mysqltx).
		return true, a.registrarVarios(mysqltx.ConCommit(ctx), t.tx, []registroDePaso{{cmd.SagaID, cmd.Paso, d.Registro}}, t.ahora, t.dif)
	})
	return d, err
}

// aplicarEnUnViaje applies actions on MySQL in one round trip, betting
// that their steps have no inbox row yet, as on an action's first delivery:
// without reading the inbox it decides as AplicarLote would on empty ones
// and sends, in one text, the steps' locks, a check that the steps still
// have no inbox row (sinInbox, read under the locks, as bloquearYLeer reads
// it), for one command the effect's savepoint, the effects' statements, the
// inbox rows and COMMIT. Any error, a lost bet included, rolls the
// transaction back whole, and the caller applies the commands the usual
// way, which decides on the rows it reads. (An effect that reads, or reads
// a statement's result, sends the statements held so far, the check first,
// in that round trip.)
func (a *Almacen) aplicarEnUnViaje(ctx context.Context, cs []Comando) ([]bandeja.Decision, error) {
	ds := make([]bandeja.Decision, len(cs))
	ef := efectoEnLote
	if len(cs) == 1 {
		ef = efectoAislado(true)
	}
	err := a.escribir(ctx, func(tx *sql.Tx) (bool, error) {
		t := a.transaccion(tx, ef)
		pasos := make([]clavePaso, len(cs))
		var claves []any
		for j := range cs {
			pasos[j] = cs[j].paso()
			claves = append(claves, pasos[j].sagaID, pasos[j].paso)
		}
		q, args, _, _ := a.bloqueo(pasos, t.ahora)
		t.dif.retener(q, args...)
		t.dif.retener(sinInbox(len(cs)), claves...)
		if len(cs) == 1 {
			t.dif.retener(tomarSavepoint)
		}
		nuevos := make([]registroDePaso, len(cs))
		for j := range cs {
			var err error
			if ds[j], err = t.decidir(ctx, &cs[j], map[string]bandeja.Registro{}); err != nil || !ds[j].Registrar {
				// An action always records its outcome; not recording
				// means something this path does not handle.
				return false, cmp.Or(err, errSinRegistro)
			}
			cmd := cs[j].Peticion.Comando
			nuevos[j] = registroDePaso{cmd.SagaID, cmd.Paso, ds[j].Registro}
		}
		return true, a.registrarVarios(mysqltx.ConCommit(ctx), t.tx, nuevos, t.ahora, t.dif)
	})
	if err != nil {
		a.unViajeFallido.Add(int64(len(cs)))
		return nil, err
	}
	a.unViaje.Add(int64(len(cs)))
	return ds, nil
}

// apuesta says whether cs can take aplicarEnUnViaje: MySQL, and actions on
// their first delivery, each of its own step.
func (a *Almacen) apuesta(cs []Comando) bool {
	if a.d.nombre != MySQL {
		return false
	}
	vistos := make(map[string]bool, len(cs))
	for j := range cs {
		cmd := cs[j].Peticion.Comando
		k := pasoDe(cmd.SagaID, cmd.Paso)
		if !cs[j].Primera || cmd.Accion != eventos.Ejecutar || vistos[k] {
			return false
		}
		vistos[k] = true
	}
	return true
}

var errSinRegistro = errors.New("almacen: la decisión no registra nada")

// registradaPorOtra answers a command that another instance recorded first
// with that instance's reply.
func (a *Almacen) registradaPorOtra(ctx context.Context, c *Comando, causa error) (bandeja.Decision, error) {
	cmd := c.Peticion.Comando
	regs, err := leerInbox(ctx, a.db, cmd.SagaID, cmd.Paso)
	if err != nil {
		return bandeja.Decision{}, errors.Join(causa, err)
	}
	if d := bandeja.Decidir(c.entrada(regs, a.reloj())); d.Caso == bandeja.Reenvio {
		return d, nil
	}
	return bandeja.Decision{}, causa
}

// AplicarLote decides cs in order in one transaction (one commit for all)
// with a fixed number of statements besides the effects: one multi-row
// upsert of the steps' lock rows (sorted, so instances lock in the same
// order), one read of their inbox rows, one multi-row insert of the new
// inbox rows. Commands of the same step see the earlier ones' rows. Any
// error, a business failure included (ErrNegocioEnLote), rolls all of them
// back: the caller then applies them one by one with Aplicar. On MySQL a
// batch of actions on their first delivery, each of its own step, first
// takes aplicarEnUnViaje.
func (a *Almacen) AplicarLote(ctx context.Context, cs []Comando) ([]bandeja.Decision, error) {
	for j := range cs {
		if err := cs[j].validar(); err != nil {
			return nil, err
		}
	}
	if a.apuesta(cs) {
		if ds, err := a.aplicarEnUnViaje(ctx, cs); err == nil {
			return ds, nil
		}
	}
	ds := make([]bandeja.Decision, len(cs))
	err := a.escribir(ctx, func(tx *sql.Tx) (bool, error) {
		t := a.transaccion(tx, efectoEnLote)
		pasos := make([]clavePaso, len(cs))
		for j := range cs {
			pasos[j] = cs[j].paso()
		}
		inbox, err := a.bloquearYLeer(ctx, t.tx, pasos, t.ahora, false)
		if err != nil {
			return false, err
		}
		var nuevos []registroDePaso
		for j := range cs {
			cmd := cs[j].Peticion.Comando
			k := pasoDe(cmd.SagaID, cmd.Paso)
			if ds[j], err = t.decidir(ctx, &cs[j], inbox[k]); err != nil {
				return false, err
			}
			if !ds[j].Registrar {
				continue
			}
			if inbox[k] == nil {
				inbox[k] = map[string]bandeja.Registro{}
			}
			inbox[k][ds[j].Registro.Accion] = ds[j].Registro
			nuevos = append(nuevos, registroDePaso{cmd.SagaID, cmd.Paso, ds[j].Registro})
		}
		if len(nuevos) == 0 {
			return false, nil
		}
		// The last statement: it commits too (MySQL, mysqltx).
		return true, a.registrarVarios(mysqltx.ConCommit(ctx), t.tx, nuevos, t.ahora, t.dif)
	})
	if err != nil {
		return nil, err
	}
	return ds, nil
}

// efecto runs the service function a decision asks for (efectoAislado,
// efectoEnLote), on tx.
type efecto func(ctx context.Context, tx servicio.Ejecutor, c *Comando, ef bandeja.Efecto, p servicio.Peticion) (bandeja.Efectuado, error)

// transaccion is a write transaction deciding commands at one time.
type transaccion struct {
	tx    servicio.Ejecutor // the *sql.Tx through the statement cache
	ahora time.Time
	// efecto runs the service function a decision asks for.
	efecto efecto
	// dif, on MySQL, holds the effects' statements back until the inbox
	// rows and the COMMIT go (registrarVarios); nil on SQLite, in process,
	// where a statement costs no round trip.
	dif *diferidas
}

func (a *Almacen) transaccion(tx *sql.Tx, ef efecto) transaccion {
	t := transaccion{tx: a.preparadas.En(tx), ahora: a.reloj(), efecto: ef}
	if a.d.nombre == MySQL {
		t.dif = &diferidas{tx: t.tx}
	}
	return t
}

// decidir decides c given its step's inbox rows and, when the decision asks
// for it, runs the effect and concludes.
func (t transaccion) decidir(ctx context.Context, c *Comando, previos map[string]bandeja.Registro) (bandeja.Decision, error) {
	d := bandeja.Decidir(c.entrada(previos, t.ahora))
	if d.Efecto == bandeja.SinEfecto {
		return d, nil
	}
	p := c.Peticion
	p.Ahora = t.ahora
	var ej servicio.Ejecutor = t.tx
	if t.dif != nil {
		ej = t.dif
	}
	r, err := t.efecto(ctx, ej, c, d.Efecto, p)
	if err != nil {
		return bandeja.Decision{}, err
	}
	return bandeja.Concluir(d, r), nil
}

// Savepoint statements of an action's effect.
const (
	tomarSavepoint    = "SAVEPOINT efecto"
	deshacerSavepoint = "ROLLBACK TO SAVEPOINT efecto"
)

// efectoAislado runs the effect of a lone command. An action runs behind a
// savepoint: whatever it wrote before refusing is undone, so its failure is
// recorded without effect. (A refused compensation records nothing, and its
// whole transaction is rolled back.) With tomado, the savepoint was taken
// already (bloquearYLeer). On MySQL (tx is *diferidas) the statements the
// action held back are dropped, and the savepoint is rolled back to only if
// some reached the server.
func efectoAislado(tomado bool) efecto {
	return func(ctx context.Context, tx servicio.Ejecutor, c *Comando, ef bandeja.Efecto, p servicio.Peticion) (bandeja.Efectuado, error) {
		directo := tx
		dif, _ := tx.(*diferidas)
		if dif != nil {
			directo = dif.tx
		}
		if ef == bandeja.EfectoAccion && !tomado {
			if _, err := directo.ExecContext(ctx, tomarSavepoint); err != nil {
				return bandeja.Efectuado{}, fmt.Errorf("savepoint: %w", err)
			}
		}
		r, err := correr(ctx, tx, c, ef, p)
		if err == nil && r.Rechazado && ef == bandeja.EfectoAccion {
			if dif != nil {
				dif.descartar()
				if !dif.enviadas {
					return r, nil
				}
			}
			if _, err := directo.ExecContext(ctx, deshacerSavepoint); err != nil {
				return bandeja.Efectuado{}, fmt.Errorf("rollback to savepoint: %w", err)
			}
		}
		return r, err
	}
}

// efectoEnLote runs the effect of a command in a batch, without a savepoint:
// a business failure aborts the batch with ErrNegocioEnLote.
func efectoEnLote(ctx context.Context, tx servicio.Ejecutor, c *Comando, ef bandeja.Efecto, p servicio.Peticion) (bandeja.Efectuado, error) {
	r, err := correr(ctx, tx, c, ef, p)
	if err == nil && r.Rechazado {
		return bandeja.Efectuado{}, ErrNegocioEnLote
	}
	return r, err
}

// correr runs the operation's action or compensation. A business failure
// (servicio.Rechazar) is an outcome; any other error is returned.
func correr(ctx context.Context, tx servicio.Ejecutor, c *Comando, ef bandeja.Efecto, p servicio.Peticion) (bandeja.Efectuado, error) {
	manejar, nombre := c.Operacion.Ejecutar, c.Operacion.Comando
	if ef == bandeja.EfectoCompensacion {
		manejar, nombre = c.Operacion.Compensar, c.Operacion.Compensacion
	}
	salida, err := manejar(ctx, tx, p)
	if neg, ok := servicio.ComoNegocio(err); ok {
		return bandeja.Efectuado{Rechazado: true, Motivo: neg.Motivo}, nil
	}
	if err != nil {
		return bandeja.Efectuado{}, fmt.Errorf("%s: %w", nombre, err)
	}
	datos, err := marshalDatos(salida)
	if err != nil {
		return bandeja.Efectuado{}, fmt.Errorf("%s: %w", nombre, err)
	}
	if len(datos) > eventos.MaximoSalida {
		// Replied as a failure (an action's effect is rolled back with it):
		// the coordinator could not carry it to the next steps.
		return bandeja.Efectuado{Rechazado: true, Motivo: fmt.Sprintf(
			"la salida de %s ocupa %d bytes, más que el límite de %d bytes por paso (eventos.MaximoSalida)", nombre, len(datos), eventos.MaximoSalida)}, nil
	}
	return bandeja.Efectuado{Datos: datos}, nil
}

func marshalDatos(v any) (string, error) {
	if v == nil {
		return "{}", nil
	}
	b, err := eventos.CodificarJSON(v)
	if err != nil {
		return "", fmt.Errorf("datos de la respuesta: %w", err)
	}
	return string(b), nil
}
