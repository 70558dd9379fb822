/* The metric buffer and the log_metric hot path in C (pacha_sdk.storage._pointbuf).
 *
 * PointBuffer keeps points as growable columns: int32 name codes (with the
 * code -> name list and the name -> code dict), float64 values, int64 steps
 * and int64 timestamps (ns). A point whose fields do not fit those columns
 * (a deferred accelerator tensor, a step beyond int64) is "odd": its four
 * fields are kept as a tuple beside the columns, in logging order, so the
 * writer sees it exactly as the pure-Python flat list would have held it.
 *
 * Nothing here releases the GIL or runs Python code between reading and
 * writing the buffer's state (no allocation that may start the garbage
 * collector happens in between), so an append is atomic for threads and
 * never interrupted by a signal handler, as list.extend is for the flat list.
 *
 * FastLog is Run.log_metric's common case done in C; everything else goes
 * to the Python method (the slow path), which keeps every rule and error.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#define FIELDS 4
#define MIN_CAPACITY 1024
#define MAX_STEP INT64_MAX
#define NAME_CACHE 64 /* recently used exact-str names by address, skipping the dict */

typedef struct {
    PyObject_HEAD
    Py_ssize_t head;     /* first live point */
    Py_ssize_t tail;     /* one past the last live point */
    Py_ssize_t capacity; /* points the columns hold */
    int32_t *codes;
    double *values;
    int64_t *steps;
    int64_t *times;
    PyObject *names;     /* list: code -> name */
    PyObject *index;     /* dict: name -> code */
    PyObject *odd;       /* list of (name, value, step, time) tuples, in position order */
    Py_ssize_t *odd_at;  /* their positions */
    Py_ssize_t odd_capacity;
    PyObject *cached[NAME_CACHE]; /* strong references, so an address stays that name's */
    int32_t cached_code[NAME_CACHE];
} PointBuffer;

static PyTypeObject PointBufferType;

static PyObject *
new_buffer(void)
{
    PointBuffer *self = PyObject_GC_New(PointBuffer, &PointBufferType);
    if (self == NULL)
        return NULL;
    self->head = self->tail = self->capacity = 0;
    self->codes = NULL;
    self->values = NULL;
    self->steps = NULL;
    self->times = NULL;
    self->odd_at = NULL;
    self->odd_capacity = 0;
    memset(self->cached, 0, sizeof(self->cached));
    self->names = PyList_New(0);
    self->index = PyDict_New();
    self->odd = PyList_New(0);
    PyObject_GC_Track(self);
    if (self->names == NULL || self->index == NULL || self->odd == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static PyObject *
buffer_new(PyTypeObject *Py_UNUSED(type), PyObject *args, PyObject *kwargs)
{
    if (PyTuple_GET_SIZE(args) || (kwargs != NULL && PyDict_GET_SIZE(kwargs))) {
        PyErr_SetString(PyExc_TypeError, "PointBuffer() takes no arguments");
        return NULL;
    }
    return new_buffer();
}

static int
buffer_traverse(PointBuffer *self, visitproc visit, void *arg)
{
    Py_VISIT(self->names);
    Py_VISIT(self->index);
    Py_VISIT(self->odd);
    return 0;
}

static int
buffer_clear(PointBuffer *self)
{
    Py_CLEAR(self->names);
    Py_CLEAR(self->index);
    Py_CLEAR(self->odd);
    return 0;
}

static void
buffer_dealloc(PointBuffer *self)
{
    PyObject_GC_UnTrack(self);
    buffer_clear(self);
    for (int i = 0; i < NAME_CACHE; i++)
        Py_CLEAR(self->cached[i]);
    PyMem_RawFree(self->codes);
    PyMem_RawFree(self->values);
    PyMem_RawFree(self->steps);
    PyMem_RawFree(self->times);
    PyMem_RawFree(self->odd_at);
    PyObject_GC_Del(self);
}

/* Resize the columns to *capacity* points (>= the live points, which start at 0). */
static int
resize_columns(PointBuffer *self, Py_ssize_t capacity)
{
    if ((size_t)capacity > PY_SSIZE_T_MAX / sizeof(int64_t)) {
        PyErr_NoMemory();
        return -1;
    }
    void *codes = PyMem_RawRealloc(self->codes, capacity * sizeof(int32_t));
    if (codes == NULL)
        goto fail;
    self->codes = codes;
    void *values = PyMem_RawRealloc(self->values, capacity * sizeof(double));
    if (values == NULL)
        goto fail;
    self->values = values;
    void *steps = PyMem_RawRealloc(self->steps, capacity * sizeof(int64_t));
    if (steps == NULL)
        goto fail;
    self->steps = steps;
    void *times = PyMem_RawRealloc(self->times, capacity * sizeof(int64_t));
    if (times == NULL)
        goto fail;
    self->times = times;
    self->capacity = capacity; /* only once every column holds it */
    return 0;
fail:
    PyErr_NoMemory();
    return -1;
}

/* Move the live points to the front of the columns. */
static void
compact(PointBuffer *self)
{
    Py_ssize_t head = self->head, live = self->tail - head;
    if (head == 0)
        return;
    if (live > 0) {
        memmove(self->codes, self->codes + head, live * sizeof(int32_t));
        memmove(self->values, self->values + head, live * sizeof(double));
        memmove(self->steps, self->steps + head, live * sizeof(int64_t));
        memmove(self->times, self->times + head, live * sizeof(int64_t));
    }
    Py_ssize_t odd = PyList_GET_SIZE(self->odd);
    for (Py_ssize_t i = 0; i < odd; i++)
        self->odd_at[i] -= head;
    self->head = 0;
    self->tail = live;
}

/* Make room for *more* points at the tail. Pure C: never runs Python code. */
static int
reserve(PointBuffer *self, Py_ssize_t more)
{
    if (self->tail + more <= self->capacity)
        return 0;
    compact(self);
    Py_ssize_t needed = self->tail + more;
    if (needed <= self->capacity)
        return 0;
    Py_ssize_t capacity = self->capacity < MIN_CAPACITY ? MIN_CAPACITY : self->capacity;
    while (capacity < needed) {
        if (capacity > PY_SSIZE_T_MAX / 2) {
            PyErr_NoMemory();
            return -1;
        }
        capacity *= 2;
    }
    return resize_columns(self, capacity);
}

static int
reserve_odd(PointBuffer *self, Py_ssize_t more)
{
    Py_ssize_t needed = PyList_GET_SIZE(self->odd) + more;
    if (needed <= self->odd_capacity)
        return 0;
    Py_ssize_t capacity = self->odd_capacity < 16 ? 16 : self->odd_capacity;
    while (capacity < needed)
        capacity *= 2;
    void *odd_at = PyMem_RawRealloc(self->odd_at, capacity * sizeof(Py_ssize_t));
    if (odd_at == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->odd_at = odd_at;
    self->odd_capacity = capacity;
    return 0;
}

/* The code of *name*, given one if new; -1 with an exception set on failure. */
static Py_ssize_t
code_lookup(PointBuffer *self, PyObject *name)
{
    PyObject *code = PyDict_GetItemWithError(self->index, name);
    if (code != NULL)
        return PyLong_AsSsize_t(code);
    if (PyErr_Occurred())
        return -1;
    Py_ssize_t next = PyList_GET_SIZE(self->names);
    if (next >= INT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "too many distinct metric names");
        return -1;
    }
    code = PyLong_FromSsize_t(next);
    if (code == NULL)
        return -1;
    int failed = PyDict_SetItem(self->index, name, code);
    Py_DECREF(code);
    if (failed)
        return -1;
    if (PyList_Append(self->names, name)) {
        PyDict_DelItem(self->index, name);
        return -1;
    }
    return next;
}

static inline Py_ssize_t
code_of(PointBuffer *self, PyObject *name)
{
    size_t slot = ((uintptr_t)name >> 4) % NAME_CACHE;
    if (self->cached[slot] == name)
        return self->cached_code[slot];
    Py_ssize_t code = code_lookup(self, name);
    if (code >= 0 && PyUnicode_CheckExact(name)) { /* freeing an exact str runs no Python code */
        Py_INCREF(name);
        Py_XSETREF(self->cached[slot], name);
        self->cached_code[slot] = (int32_t)code;
    }
    return code;
}

static inline int64_t
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts); /* what time.time_ns() reads */
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void
append_regular(PointBuffer *self, int32_t code, double value, int64_t step, int64_t time)
{
    Py_ssize_t at = self->tail;
    self->codes[at] = code;
    self->values[at] = value;
    self->steps[at] = step;
    self->times[at] = time;
    self->tail = at + 1;
}

/* An int64 from an int object; 0 and no exception if it is not one or does not fit. */
static int
as_int64(PyObject *value, int64_t *out)
{
    if (!PyLong_Check(value))
        return 0;
    int overflow;
    long long as_long = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (overflow || (as_long == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        return 0;
    }
    *out = as_long;
    return 1;
}

typedef struct {
    int32_t code;
    int odd;
    double value;
    int64_t step;
    int64_t time;
} Point;

/* PointBuffer.extend(fields): append points given flat, four fields each, all or none. */
static PyObject *
buffer_extend(PointBuffer *self, PyObject *fields)
{
    PyObject *fast = PySequence_Fast(fields, "extend takes a sequence of point fields");
    if (fast == NULL)
        return NULL;
    Py_ssize_t size = PySequence_Fast_GET_SIZE(fast);
    if (size % FIELDS) {
        Py_DECREF(fast);
        return PyErr_Format(PyExc_ValueError, "%zd fields: not whole points of 4", size);
    }
    Py_ssize_t count = size / FIELDS;
    PyObject **items = PySequence_Fast_ITEMS(fast);
    Point small[16];
    Point *points = count <= 16 ? small : PyMem_Malloc(count * sizeof(Point));
    PyObject *odd = NULL; /* the tuple of each odd point, built before any change */
    if (points == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    /* First everything that may allocate (and so start the garbage collector). */
    for (Py_ssize_t point = 0; point < count; point++) {
        PyObject **f = items + point * FIELDS;
        Point *p = points + point;
        Py_ssize_t code = code_of(self, f[0]);
        if (code < 0)
            goto fail;
        p->code = (int32_t)code;
        if (point > 0 && !p[-1].odd && f[3] == f[3 - FIELDS] && f[2] == f[2 - FIELDS]) {
            p->step = p[-1].step; /* log_metrics: one step and time object for all its points */
            p->time = p[-1].time;
            p->odd = !PyFloat_CheckExact(f[1]);
        } else {
            p->odd = !PyFloat_CheckExact(f[1]) || !as_int64(f[2], &p->step) ||
                     !as_int64(f[3], &p->time);
        }
        if (p->odd) {
            if (odd == NULL && (odd = PyList_New(0)) == NULL) /* only then: it is GC-tracked */
                goto fail;
            PyObject *entry = PyTuple_Pack(FIELDS, f[0], f[1], f[2], f[3]);
            if (entry == NULL || PyList_Append(odd, entry)) {
                Py_XDECREF(entry);
                goto fail;
            }
            Py_DECREF(entry);
            p->value = Py_NAN;
            p->step = p->time = 0;
        } else {
            p->value = PyFloat_AS_DOUBLE(f[1]);
        }
    }
    Py_ssize_t odd_count = odd == NULL ? 0 : PyList_GET_SIZE(odd);
    if (reserve(self, count) || reserve_odd(self, odd_count))
        goto fail;
    Py_ssize_t base = PyList_GET_SIZE(self->odd);
    for (Py_ssize_t j = 0; j < odd_count; j++) {
        if (PyList_Append(self->odd, PyList_GET_ITEM(odd, j))) {
            PyList_SetSlice(self->odd, base, PY_SSIZE_T_MAX, NULL); /* odd still holds them */
            goto fail;
        }
    }
    /* Then the change itself: nothing from here on can fail or run Python code. */
    Py_ssize_t next_odd = base;
    for (Py_ssize_t point = 0; point < count; point++) {
        Point *p = points + point;
        if (p->odd)
            self->odd_at[next_odd++] = self->tail;
        append_regular(self, p->code, p->value, p->step, p->time);
    }
    if (points != small)
        PyMem_Free(points);
    Py_XDECREF(odd);
    Py_DECREF(fast);
    Py_RETURN_NONE;
fail:
    if (points != small)
        PyMem_Free(points);
    Py_XDECREF(odd);
    Py_DECREF(fast);
    return NULL;
}

static Py_ssize_t
buffer_len(PointBuffer *self)
{
    return (self->tail - self->head) * FIELDS;
}

static Py_ssize_t
first_odd_from(PointBuffer *self, Py_ssize_t position)
{
    Py_ssize_t odd = PyList_GET_SIZE(self->odd), i = 0;
    while (i < odd && self->odd_at[i] < position)
        i++;
    return i;
}

/* A new buffer holding a copy of the oldest min(limit, all) points, names coded anew
 * by first appearance (as pa.array(...).dictionary_encode() codes them). */
static PyObject *
copy_oldest(PointBuffer *self, Py_ssize_t limit)
{
    PointBuffer *batch = (PointBuffer *)new_buffer(); /* may run the collector: read after */
    if (batch == NULL)
        return NULL;
    Py_ssize_t head = self->head, live = self->tail - head;
    Py_ssize_t count = limit >= 0 && limit < live ? limit : live;
    if (count == 0)
        return (PyObject *)batch;
    Py_ssize_t first = first_odd_from(self, head), last = first_odd_from(self, head + count);
    Py_ssize_t known = PyList_GET_SIZE(self->names);
    int32_t *local = PyMem_RawMalloc((known ? known : 1) * sizeof(int32_t));
    if (local == NULL || resize_columns(batch, count) || reserve_odd(batch, last - first)) {
        PyMem_RawFree(local);
        Py_DECREF(batch);
        return local == NULL ? PyErr_NoMemory() : NULL;
    }
    for (Py_ssize_t i = 0; i < known; i++)
        local[i] = -1;
    Py_ssize_t named = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        int32_t code = self->codes[head + i];
        if (local[code] < 0)
            local[code] = (int32_t)named++;
        batch->codes[i] = local[code];
    }
    memcpy(batch->values, self->values + head, count * sizeof(double));
    memcpy(batch->steps, self->steps + head, count * sizeof(int64_t));
    memcpy(batch->times, self->times + head, count * sizeof(int64_t));
    batch->tail = count;
    for (Py_ssize_t i = first; i < last; i++) {
        batch->odd_at[i - first] = self->odd_at[i] - head;
        if (PyList_Append(batch->odd, PyList_GET_ITEM(self->odd, i))) {
            PyMem_RawFree(local);
            Py_DECREF(batch);
            return NULL;
        }
    }
    /* The names last: from here on the source is not read again. */
    PyObject *names = PyList_GetSlice(self->names, 0, known);
    int failed = names == NULL;
    PyObject *ordered = failed ? NULL : PyList_New(named);
    failed = failed || ordered == NULL;
    for (Py_ssize_t code = 0; !failed && code < known; code++) {
        if (local[code] >= 0) {
            PyObject *name = PyList_GET_ITEM(names, code);
            Py_INCREF(name);
            PyList_SET_ITEM(ordered, local[code], name);
        }
    }
    for (Py_ssize_t code = 0; !failed && code < named; code++) {
        PyObject *number = PyLong_FromSsize_t(code);
        failed = number == NULL ||
                 PyDict_SetItem(batch->index, PyList_GET_ITEM(ordered, code), number);
        Py_XDECREF(number);
    }
    PyMem_RawFree(local);
    Py_XDECREF(names);
    if (failed) {
        Py_XDECREF(ordered);
        Py_DECREF(batch);
        return NULL;
    }
    Py_SETREF(batch->names, ordered);
    return (PyObject *)batch;
}

static PyObject *
buffer_take(PointBuffer *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t limit = -1;
    if (nargs > 1)
        return PyErr_Format(PyExc_TypeError, "take takes at most 1 argument");
    if (nargs == 1 && args[0] != Py_None) {
        limit = PyLong_AsSsize_t(args[0]);
        if (limit == -1 && PyErr_Occurred())
            return NULL;
        if (limit < 0)
            return PyErr_Format(PyExc_ValueError, "limit must be >= 0");
    }
    return copy_oldest(self, limit);
}

/* PointBuffer.discard(count): forget the oldest *count* points, giving memory back. */
static PyObject *
buffer_discard(PointBuffer *self, PyObject *arg)
{
    Py_ssize_t count = PyLong_AsSsize_t(arg);
    if (count == -1 && PyErr_Occurred())
        return NULL;
    if (count < 0 || count > self->tail - self->head)
        return PyErr_Format(PyExc_ValueError, "cannot discard %zd points", count);
    Py_ssize_t head = self->head + count;
    Py_ssize_t gone = first_odd_from(self, head);
    PyObject *removed = PyList_GetSlice(self->odd, 0, gone); /* keeps them alive until the end */
    if (removed == NULL)
        return NULL;
    gone = first_odd_from(self, head); /* unchanged: appends only go after it */
    PyList_SetSlice(self->odd, 0, gone, NULL);
    Py_ssize_t left = PyList_GET_SIZE(self->odd);
    if (gone && left)
        memmove(self->odd_at, self->odd_at + gone, left * sizeof(Py_ssize_t));
    self->head = head;
    if (self->head == self->tail) {
        self->head = self->tail = 0;
    } else if (self->head >= self->capacity / 2) {
        compact(self);
    }
    Py_ssize_t live = self->tail - self->head;
    if (self->capacity > MIN_CAPACITY && self->capacity >= 4 * live) {
        compact(self);
        Py_ssize_t capacity = 2 * live < MIN_CAPACITY ? MIN_CAPACITY : 2 * live;
        if (resize_columns(self, capacity))
            PyErr_Clear(); /* shrinking failed: keep the larger columns */
    }
    Py_DECREF(removed); /* tensors may be freed now: the buffer is consistent */
    Py_RETURN_NONE;
}

/* PointBuffer.latest(name): (step, value) of its highest step, ties the last logged;
 * None if absent; NotImplemented if the buffer holds odd points (read those as rows). */
static PyObject *
buffer_latest(PointBuffer *self, PyObject *name)
{
    if (PyList_GET_SIZE(self->odd))
        Py_RETURN_NOTIMPLEMENTED;
    PyObject *code_object = PyDict_GetItemWithError(self->index, name);
    if (code_object == NULL) {
        if (PyErr_Occurred()) {
            if (!PyErr_ExceptionMatches(PyExc_TypeError))
                return NULL;
            PyErr_Clear();
        }
        Py_RETURN_NONE;
    }
    int32_t code = (int32_t)PyLong_AsSsize_t(code_object);
    Py_ssize_t best = -1;
    for (Py_ssize_t i = self->head; i < self->tail; i++) {
        if (self->codes[i] == code && (best < 0 || self->steps[i] >= self->steps[best]))
            best = i;
    }
    if (best < 0)
        Py_RETURN_NONE;
    return Py_BuildValue("(Ld)", (long long)self->steps[best], self->values[best]);
}

/* The points as the flat list the pure-Python buffer holds. */
static PyObject *
rows_of(PointBuffer *batch)
{
    Py_ssize_t count = batch->tail - batch->head;
    PyObject *rows = PyList_New(count * FIELDS);
    if (rows == NULL)
        return NULL;
    Py_ssize_t odd = PyList_GET_SIZE(batch->odd), next_odd = first_odd_from(batch, batch->head);
    for (Py_ssize_t i = 0; i < count; i++) {
        Py_ssize_t at = batch->head + i;
        PyObject **slot = &PyList_GET_ITEM(rows, i * FIELDS);
        if (next_odd < odd && batch->odd_at[next_odd] == at) {
            PyObject *tuple = PyList_GET_ITEM(batch->odd, next_odd++);
            for (int f = 0; f < FIELDS; f++) {
                slot[f] = PyTuple_GET_ITEM(tuple, f);
                Py_INCREF(slot[f]);
            }
            continue;
        }
        slot[0] = PyList_GET_ITEM(batch->names, batch->codes[at]);
        Py_INCREF(slot[0]);
        slot[1] = PyFloat_FromDouble(batch->values[at]);
        slot[2] = PyLong_FromLongLong(batch->steps[at]);
        slot[3] = PyLong_FromLongLong(batch->times[at]);
        if (slot[1] == NULL || slot[2] == NULL || slot[3] == NULL) {
            Py_DECREF(rows); /* NULL slots are skipped */
            return NULL;
        }
    }
    return rows;
}

static PyObject *
buffer_to_rows(PointBuffer *self, PyObject *Py_UNUSED(ignored))
{
    PointBuffer *copy = (PointBuffer *)copy_oldest(self, -1); /* a snapshot first */
    if (copy == NULL)
        return NULL;
    PyObject *rows = rows_of(copy);
    Py_DECREF(copy);
    return rows;
}

/* (names, codes, values, steps, times): the dictionary and four columns as bytes. */
static PyObject *
buffer_columns(PointBuffer *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *names = PyList_GetSlice(self->names, 0, PyList_GET_SIZE(self->names));
    if (names == NULL)
        return NULL;
    Py_ssize_t head = self->head, count = self->tail - head;
    return Py_BuildValue(
        "(Ny#y#y#y#)", names,
        (const char *)(self->codes + head), count * (Py_ssize_t)sizeof(int32_t),
        (const char *)(self->values + head), count * (Py_ssize_t)sizeof(double),
        (const char *)(self->steps + head), count * (Py_ssize_t)sizeof(int64_t),
        (const char *)(self->times + head), count * (Py_ssize_t)sizeof(int64_t));
}

static PyObject *
buffer_odd_count(PointBuffer *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(PyList_GET_SIZE(self->odd));
}

static PyObject *
buffer_points(PointBuffer *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(self->tail - self->head);
}

static PyObject *
buffer_capacity(PointBuffer *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(self->capacity);
}

static PyMethodDef buffer_methods[] = {
    {"extend", (PyCFunction)buffer_extend, METH_O,
     "Append points given flat (name, value, step, time_ns per point), all or none."},
    {"take", (PyCFunction)(void (*)(void))buffer_take, METH_FASTCALL,
     "A new buffer with a copy of the oldest points, at most limit (None: all)."},
    {"discard", (PyCFunction)buffer_discard, METH_O,
     "Forget the oldest count points and give unused memory back."},
    {"latest", (PyCFunction)buffer_latest, METH_O,
     "(step, value) of name's highest step (ties: logged last), None, or NotImplemented "
     "when odd points are held."},
    {"to_rows", (PyCFunction)buffer_to_rows, METH_NOARGS, "The points as a flat list."},
    {"columns", (PyCFunction)buffer_columns, METH_NOARGS,
     "(names, codes, values, steps, times): the name dictionary and the columns as bytes."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef buffer_getset[] = {
    {"odd", (getter)buffer_odd_count, NULL, "Points kept as objects (not in the columns).", NULL},
    {"points", (getter)buffer_points, NULL, "Points held.", NULL},
    {"capacity", (getter)buffer_capacity, NULL, "Points the columns have room for.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PySequenceMethods buffer_as_sequence = {
    .sq_length = (lenfunc)buffer_len,
};

static PyTypeObject PointBufferType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "pacha_sdk.storage._pointbuf.PointBuffer",
    .tp_basicsize = sizeof(PointBuffer),
    .tp_dealloc = (destructor)buffer_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Buffered metric points as columns; len() counts fields (4 per point).",
    .tp_traverse = (traverseproc)buffer_traverse,
    .tp_clear = (inquiry)buffer_clear,
    .tp_methods = buffer_methods,
    .tp_getset = buffer_getset,
    .tp_as_sequence = &buffer_as_sequence,
    .tp_new = buffer_new,
};

/* FastLog: a run's log_metric. */

typedef struct {
    PyObject_HEAD
    PyObject *attrs; /* the run's __dict__: _last_step, _rows and _max_slots are read per call */
    PyObject *slow;  /* the Python log_metric, bound to the run */
    vectorcallfunc vectorcall;
} FastLog;

static PyObject *s_last_step, *s_rows, *s_max_slots, *s_step;

static PyObject *
fastlog_call(FastLog *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject *step_object = Py_None;
    if (nargs < 2 || nargs > 3)
        goto slow;
    if (nargs == 3)
        step_object = args[2];
    if (kwnames != NULL && PyTuple_GET_SIZE(kwnames)) {
        PyObject *keyword = PyTuple_GET_ITEM(kwnames, 0);
        if (nargs != 2 || PyTuple_GET_SIZE(kwnames) != 1 ||
            (keyword != s_step && PyUnicode_Compare(keyword, s_step) != 0))
            goto slow;
        step_object = args[2];
    }
    PyObject *name = args[0], *value = args[1];
    if (!PyUnicode_CheckExact(name) || !PyFloat_CheckExact(value))
        goto slow;
    PyObject *last_step = PyDict_GetItemWithError(self->attrs, s_last_step);
    PyObject *rows = last_step ? PyDict_GetItemWithError(self->attrs, s_rows) : NULL;
    PyObject *max_slots_object = rows ? PyDict_GetItemWithError(self->attrs, s_max_slots) : NULL;
    if (max_slots_object == NULL || !PyDict_CheckExact(last_step) ||
        !Py_IS_TYPE(rows, &PointBufferType) || !PyLong_CheckExact(max_slots_object))
        goto slow;
    PointBuffer *buffer = (PointBuffer *)rows;
    Py_ssize_t max_slots = PyLong_AsSsize_t(max_slots_object);
    if (max_slots == -1 && PyErr_Occurred())
        goto slow;
    if ((buffer->tail - buffer->head + 1) * FIELDS > max_slots)
        goto slow; /* backpressure, or a forked child's first point */
    PyObject *last = PyDict_GetItemWithError(last_step, name);
    if (last == NULL || !PyLong_CheckExact(last))
        goto slow; /* a new name, or the LastStep sentinel */
    int overflow;
    long long step;
    if (step_object == Py_None) {
        long long previous = PyLong_AsLongLongAndOverflow(last, &overflow);
        if (overflow || previous < -1 || previous >= MAX_STEP - 1)
            goto slow;
        step = previous + 1;
        step_object = PyLong_FromLongLong(step);
        if (step_object == NULL)
            return NULL;
    } else {
        if (!PyLong_CheckExact(step_object))
            goto slow;
        step = PyLong_AsLongLongAndOverflow(step_object, &overflow);
        if (overflow || step < 0 || step >= MAX_STEP)
            goto slow;
        Py_INCREF(step_object);
    }
    Py_ssize_t code = code_of(buffer, name);
    if (code < 0 || reserve(buffer, 1) || PyDict_SetItem(last_step, name, step_object)) {
        Py_DECREF(step_object);
        return NULL;
    }
    Py_DECREF(step_object);
    append_regular(buffer, (int32_t)code, PyFloat_AS_DOUBLE(value), step, now_ns());
    Py_RETURN_NONE;
slow:
    if (PyErr_Occurred())
        PyErr_Clear();
    return PyObject_Vectorcall(self->slow, args, nargs, kwnames);
}

static PyObject *
fastlog_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    PyObject *attrs, *slow;
    if (kwargs != NULL && PyDict_GET_SIZE(kwargs)) {
        PyErr_SetString(PyExc_TypeError, "FastLog() takes no keyword arguments");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "O!O:FastLog", &PyDict_Type, &attrs, &slow))
        return NULL;
    FastLog *self = PyObject_GC_New(FastLog, type);
    if (self == NULL)
        return NULL;
    Py_INCREF(attrs);
    Py_INCREF(slow);
    self->attrs = attrs;
    self->slow = slow;
    self->vectorcall = (vectorcallfunc)fastlog_call;
    PyObject_GC_Track(self);
    return (PyObject *)self;
}

static int
fastlog_traverse(FastLog *self, visitproc visit, void *arg)
{
    Py_VISIT(self->attrs);
    Py_VISIT(self->slow);
    return 0;
}

static int
fastlog_clear(FastLog *self)
{
    Py_CLEAR(self->attrs);
    Py_CLEAR(self->slow);
    return 0;
}

static void
fastlog_dealloc(FastLog *self)
{
    PyObject_GC_UnTrack(self);
    fastlog_clear(self);
    PyObject_GC_Del(self);
}

static PyObject *
fastlog_get_slow(FastLog *self, void *Py_UNUSED(closure))
{
    Py_INCREF(self->slow);
    return self->slow;
}

static PyObject *
fastlog_get_doc(FastLog *self, void *Py_UNUSED(closure))
{
    return PyObject_GetAttrString(self->slow, "__doc__");
}

static PyGetSetDef fastlog_getset[] = {
    {"slow_path", (getter)fastlog_get_slow, NULL, "The Python method every other case goes to.",
     NULL},
    {"__doc__", (getter)fastlog_get_doc, NULL, NULL, NULL},
    {"__wrapped__", (getter)fastlog_get_slow, NULL, "The same: inspect.signature follows it.",
     NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject FastLogType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "pacha_sdk.storage._pointbuf.FastLog",
    .tp_basicsize = sizeof(FastLog),
    .tp_dealloc = (destructor)fastlog_dealloc,
    .tp_vectorcall_offset = offsetof(FastLog, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_traverse = (traverseproc)fastlog_traverse,
    .tp_clear = (inquiry)fastlog_clear,
    .tp_getset = fastlog_getset,
    .tp_new = fastlog_new,
};

static struct PyModuleDef pointbuf_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "pacha_sdk.storage._pointbuf",
    .m_doc = "The metric buffer and log_metric's common case in C.",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__pointbuf(void)
{
    s_last_step = PyUnicode_InternFromString("_last_step");
    s_rows = PyUnicode_InternFromString("_rows");
    s_max_slots = PyUnicode_InternFromString("_max_slots");
    s_step = PyUnicode_InternFromString("step");
    if (!s_last_step || !s_rows || !s_max_slots || !s_step)
        return NULL;
    if (PyType_Ready(&PointBufferType) < 0 || PyType_Ready(&FastLogType) < 0)
        return NULL;
    PyObject *module = PyModule_Create(&pointbuf_module);
    if (module == NULL)
        return NULL;
    Py_INCREF(&PointBufferType);
    Py_INCREF(&FastLogType);
    if (PyModule_AddObject(module, "PointBuffer", (PyObject *)&PointBufferType) ||
        PyModule_AddObject(module, "FastLog", (PyObject *)&FastLogType)) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
