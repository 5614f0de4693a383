/*
 * _pinfer.c - the CPython extension of the `pinfer` package: libpinfer's
 * runtime (pools, pinning, executors, streams), its topology and its planner,
 * for the thin Python of pinfer/runtime.py.
 *
 * The GIL.  Nothing here holds the GIL while it waits or while pinned work
 * runs: pf_pin/pf_unpin, pf_executor_create/free, future waits, stream runs
 * and topology loads all run inside WITHOUT_GIL() (PyEval_SaveThread and
 * PyEval_RestoreThread around them).  A worker thread of an executor or a stream takes
 * the GIL only to call the Python callable of a task (which, for TorchScript
 * and for torch's own operators, releases it again while tensors are
 * computed) and to store its result.
 *
 * Worker threads and Python.  libpinfer's workers are not Python threads.
 * The first task a worker runs gives it a Python thread state that lasts
 * until a farewell task, queued when its executor or streams are closed,
 * deletes it: thread-local Python state (threading.local, the
 * threading._DummyThread entry) then lives as long as the worker instead of
 * being rebuilt for every task.  Tasks that would run once the interpreter
 * is finalizing do not touch Python (pinfer/runtime.py closes every executor
 * in an atexit hook, before that).
 *
 * Errors.  Every libpinfer error becomes a Python exception whose message is
 * the library's one-line explanation: ValueError for invalid arguments of
 * pools, streams, topologies and plans (-EINVAL), MemoryError (-ENOMEM),
 * FileNotFoundError and PermissionError for topology files, RuntimeError
 * otherwise.  An exception raised by a task's callable travels through its
 * future and is raised again by Future.get(); one raised in a stream is
 * raised again by Streams.run() (the lowest-index stream's when several
 * fail).
 *
 * fork().  A child made by fork() has one thread, the one that called it:
 * the workers of executors and streams made before stay in the parent, and
 * their queues' mutexes may have been held at that moment.  So executors,
 * futures and streams remember the process that made them; in any other
 * process they raise RuntimeError at once instead of waiting for threads
 * that do not exist, and close() and deallocation leave libpinfer's object
 * alone (it is the parent's; the child's copy is lost with the child).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "pinfer_runtime.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <omp.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

PyMODINIT_FUNC PyInit__pinfer(void);

/* The return code of a task or chunk whose callable raised: the exception is kept aside. */
#define CALLABLE_RAISED (-EPERM)
/* How long Future.get() waits between two looks at pending signals (Ctrl-C). */
#define WAIT_SLICE_MS 100

/* Run a statement with the GIL released (Py_BEGIN/END_ALLOW_THREADS, as one expression). */
#define WITHOUT_GIL(statement)                           \
    do {                                                 \
        PyThreadState *gil_state_ = PyEval_SaveThread(); \
        statement;                                       \
        PyEval_RestoreThread(gil_state_);                \
    } while (0)

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */

/*
 * Raise the exception for a libpinfer error and free `why`.  `invalid` is the
 * class for -EINVAL (ValueError where the caller's arguments are at fault).
 */
static PyObject *raise_pf(PyObject *invalid, const char *what, int rc, char *why)
{
    PyObject *type = rc == -ENOMEM   ? PyExc_MemoryError
                     : rc == -EINVAL ? invalid
                     : rc == -ENOENT ? PyExc_FileNotFoundError
                     : rc == -EACCES ? PyExc_PermissionError
                                     : PyExc_RuntimeError;
    PyErr_Format(type, "%s: %s", what, why ? why : pf_strerror(rc));
    free(why);
    return NULL;
}

/* An exception kept aside to be raised again later, possibly several times. */
typedef struct saved_error {
    PyObject *type, *value, *traceback;
} saved_error;

/* Move the current exception into *e (the GIL held, an exception set). */
static void save_error(saved_error *e)
{
#if PY_VERSION_HEX >= 0x030C0000
    e->value = PyErr_GetRaisedException(); /* it carries its traceback */
    e->type = (PyObject *)Py_TYPE(e->value);
    Py_INCREF(e->type);
    e->traceback = NULL;
#else
    PyErr_Fetch(&e->type, &e->value, &e->traceback);
    PyErr_NormalizeException(&e->type, &e->value, &e->traceback);
    if (e->traceback && e->value)
        PyException_SetTraceback(e->value, e->traceback);
#endif
}

/* Raise *e again, keeping it for the next time; returns NULL. */
static PyObject *raise_saved(const saved_error *e)
{
#if PY_VERSION_HEX >= 0x030C0000
    Py_INCREF(e->value);
    PyErr_SetRaisedException(e->value);
#else
    Py_XINCREF(e->type);
    Py_XINCREF(e->value);
    Py_XINCREF(e->traceback);
    PyErr_Restore(e->type, e->value, e->traceback);
#endif
    return NULL;
}

static void clear_error(saved_error *e)
{
    Py_CLEAR(e->type);
    Py_CLEAR(e->value);
    Py_CLEAR(e->traceback);
}

/* ------------------------------------------------------------------------ */
/* fork()                                                                    */

/* true in a child made by fork() after the object made in process `maker`. */
static bool forked_since(pid_t maker)
{
    return getpid() != maker;
}

/* RuntimeError: `what` (made in `maker`) used in a child made by fork(); returns NULL. */
static PyObject *raise_forked(const char *what, pid_t maker)
{
    return PyErr_Format(PyExc_RuntimeError,
                        "%s was made in process %ld; this is process %ld, a child made by "
                        "fork(), where its worker threads do not exist (fork() copies only the "
                        "calling thread): make a new one in the child",
                        what, (long)maker, (long)getpid());
}

/* ------------------------------------------------------------------------ */
/* Worker threads and the interpreter                                        */

static bool python_finalizing(void)
{
#if PY_VERSION_HEX >= 0x030D0000
    return Py_IsFinalizing();
#else
    return _Py_IsFinalizing();
#endif
}

/*
 * Take the GIL on a libpinfer worker.  The first time on a thread, make a
 * thread state that outlives this call (the Ensure that creates it is not
 * released until farewell()), so that the following calls reuse it.
 */
static PyGILState_STATE worker_enter(void)
{
    if (!PyGILState_GetThisThreadState()) {
        PyGILState_Ensure();
        PyEval_SaveThread();
    }
    return PyGILState_Ensure();
}

static void worker_leave(PyGILState_STATE state)
{
    PyGILState_Release(state);
}

/* The last task of a worker: delete the thread state worker_enter() made. */
static int farewell(void *arg)
{
    (void)arg;
    PyThreadState *state = PyGILState_GetThisThreadState();
    if (!state || python_finalizing())
        return 0;
    PyEval_RestoreThread(state);
    /* Its count drops to zero: the state is cleared and deleted, and the GIL released. */
    PyGILState_Release(PyGILState_UNLOCKED);
    return 0;
}

static int farewell_chunk(void *ctx, int stream, size_t begin, size_t end)
{
    (void)stream, (void)begin, (void)end;
    return farewell(ctx);
}

/* ------------------------------------------------------------------------ */
/* Topologies                                                                */

typedef struct topology_load {
    const char *source;
    pf_topology *topo;
    char *why;
    int rc;
} topology_load;

static void *load_in_thread(void *arg)
{
    topology_load *load = arg;
    load->rc = pf_topology_load(load->source, &load->topo, &load->why);
    return NULL;
}

/*
 * Load a topology.  The live one is loaded in a thread whose mask is every
 * CPU the process may use (its start-up mask and cgroup, as pools see it):
 * `allowed` comes from the loading thread's mask, and the caller may be
 * pinned.  Runs without the GIL.
 */
static void load_topology(topology_load *load)
{
    bool live =
        !load->source || strcmp(load->source, "live") == 0 || strcmp(load->source, "hwloc") == 0;
    pf_pool *everything = NULL;
    if (!live || pf_pool_from_process(&everything, NULL) < 0) {
        load_in_thread(load);
        return;
    }
    size_t n;
    const int *cpus = pf_pool_cpus(everything, &n);
    int top = cpus[n - 1];
    cpu_set_t *mask = CPU_ALLOC((size_t)top + 1);
    size_t size = CPU_ALLOC_SIZE((size_t)top + 1);
    bool loaded = false;
    pthread_attr_t attr;
    if (mask && pthread_attr_init(&attr) == 0) {
        CPU_ZERO_S(size, mask);
        for (size_t i = 0; i < n; i++)
            CPU_SET_S((size_t)cpus[i], size, mask);
        pthread_t thread;
        if (pthread_attr_setaffinity_np(&attr, size, mask) == 0 &&
            pthread_create(&thread, &attr, load_in_thread, load) == 0) {
            pthread_join(thread, NULL);
            loaded = true;
        }
        pthread_attr_destroy(&attr);
    }
    if (mask)
        CPU_FREE(mask);
    pf_pool_free(everything);
    if (!loaded)
        load_in_thread(load);
}

/*
 * The pool of NUMA node `node` in the topology of `source` (a topology
 * source string, as for topology_json), filtered as every pool is by what
 * this process may use: what CPUPool(node_id=node) would be on that machine
 * (the tests' way to check MultiStreamModule's default pool on machines
 * they are not on).  Called with the GIL; releases it while loading.
 */
static int pool_from_source_node(const char *source, int node, bool logical, pf_pool **out,
                                 char **why)
{
    topology_load load = {source, NULL, NULL, 0};
    int rc;
    WITHOUT_GIL(load_topology(&load);
                rc = load.rc < 0 ? load.rc : pf_pool_from_node(load.topo, node, logical, out, why);
                pf_topology_free(load.topo));
    if (load.rc < 0)
        *why = load.why;
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Pools                                                                     */

typedef struct {
    PyObject_HEAD pf_pool *pool;
} PoolObject;

static PyTypeObject PoolType;

static PyObject *int_list(const int *v, size_t n)
{
    PyObject *list = PyList_New((Py_ssize_t)n);
    if (!list)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        PyObject *x = PyLong_FromLong(v[i]);
        if (!x) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, x);
    }
    return list;
}

static PyObject *pool_wrap(pf_pool *pool)
{
    PoolObject *self = PyObject_New(PoolObject, &PoolType);
    if (!self) {
        pf_pool_free(pool);
        return NULL;
    }
    self->pool = pool;
    return (PyObject *)self;
}

static void pool_dealloc(PoolObject *self)
{
    pf_pool_free(self->pool);
    PyObject_Free(self);
}

static PyObject *pool_cpus(PoolObject *self, void *closure)
{
    (void)closure;
    size_t n;
    const int *cpus = pf_pool_cpus(self->pool, &n);
    return int_list(cpus, n);
}

static Py_ssize_t pool_len(PoolObject *self)
{
    size_t n;
    pf_pool_cpus(self->pool, &n);
    return (Py_ssize_t)n;
}

static PyObject *pool_repr(PoolObject *self)
{
    size_t n;
    const int *cpus = pf_pool_cpus(self->pool, &n);
    char *text = NULL;
    if (pf_cpulist_format(cpus, n, &text) < 0)
        return PyErr_NoMemory();
    PyObject *repr = PyUnicode_FromFormat("<_pinfer.Pool CPUs %s>", text);
    free(text);
    return repr;
}

static PyGetSetDef pool_getset[] = {
    {"cpus", (getter)pool_cpus, NULL, "the pool's CPU ids in order (a new list)", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PySequenceMethods pool_as_sequence = {.sq_length = (lenfunc)pool_len};

static PyTypeObject PoolType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "pinfer._pinfer.Pool",
    .tp_basicsize = sizeof(PoolObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "An ordered list of CPUs this process may use (libpinfer's pf_pool).",
    .tp_dealloc = (destructor)pool_dealloc,
    .tp_repr = (reprfunc)pool_repr,
    .tp_getset = pool_getset,
    .tp_as_sequence = &pool_as_sequence,
};

static const pf_pool *pool_arg(PyObject *obj)
{
    if (!PyObject_TypeCheck(obj, &PoolType)) {
        PyErr_Format(PyExc_TypeError, "expected a _pinfer.Pool, not %.100s", Py_TYPE(obj)->tp_name);
        return NULL;
    }
    return ((PoolObject *)obj)->pool;
}

/* The ints of an iterable, in order (bools refused: CPU True is a mistake). */
static int *ints_of(PyObject *iterable, size_t *n, const char *what)
{
    PyObject *seq = PySequence_Fast(iterable, "expected an iterable of ints");
    if (!seq)
        return NULL;
    Py_ssize_t len = PySequence_Fast_GET_SIZE(seq);
    int *ids = malloc((size_t)(len ? len : 1) * sizeof *ids);
    if (!ids) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < len; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
        long v = -1;
        if (PyBool_Check(item) || !PyIndex_Check(item)) {
            PyErr_Format(PyExc_TypeError, "%s: %R is not an int", what, item);
        } else {
            PyObject *index = PyNumber_Index(item);
            v = index ? PyLong_AsLong(index) : -1;
            Py_XDECREF(index);
            if (!PyErr_Occurred() && v < 0)
                PyErr_Format(PyExc_ValueError, "%s: CPU id %ld is negative", what, v);
            else if (!PyErr_Occurred() && v >= PF_ID_LIMIT)
                PyErr_Format(PyExc_ValueError, "%s: CPU id %ld is out of range (0 to %d)", what, v,
                             PF_ID_LIMIT - 1);
        }
        if (PyErr_Occurred()) {
            if (PyErr_ExceptionMatches(PyExc_OverflowError)) {
                PyErr_Clear();
                PyErr_Format(PyExc_ValueError, "%s: CPU id %R is out of range", what, item);
            }
            free(ids);
            Py_DECREF(seq);
            return NULL;
        }
        ids[i] = (int)v;
    }
    Py_DECREF(seq);
    *n = (size_t)len;
    return ids;
}

static PyObject *mod_pool_from_list(PyObject *module, PyObject *cpus)
{
    (void)module;
    size_t n;
    int *ids = ints_of(cpus, &n, "core_ids");
    if (!ids)
        return NULL;
    pf_pool *pool = NULL;
    char *why = NULL;
    int rc = pf_pool_from_list(ids, n, &pool, &why);
    free(ids);
    if (rc < 0)
        return raise_pf(PyExc_ValueError, "CPUPool", rc, why);
    return pool_wrap(pool);
}

/*
 * A NUMA node id from Python: an int or anything with __index__ (a numpy or
 * 0-d torch integer), not a bool.  An id no int can hold is a node that does
 * not exist: ValueError, as for any other missing node.
 */
static int node_id_of(PyObject *obj, int *node)
{
    if (PyBool_Check(obj) || !PyIndex_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "CPUPool: node_id %R is not an int", obj);
        return -1;
    }
    PyObject *index = PyNumber_Index(obj);
    if (!index)
        return -1;
    int overflow = 0;
    long v = PyLong_AsLongAndOverflow(index, &overflow);
    if (v == -1 && PyErr_Occurred()) {
        Py_DECREF(index);
        return -1;
    }
    if (overflow || v < INT_MIN || v > INT_MAX) {
        PyErr_Format(PyExc_ValueError, "CPUPool: NUMA node %R does not exist", index);
        Py_DECREF(index);
        return -1;
    }
    Py_DECREF(index);
    *node = (int)v;
    return 0;
}

static PyObject *mod_pool_from_node(PyObject *module, PyObject *args, PyObject *kwargs)
{
    (void)module;
    static char *names[] = {"node", "logical", "source", NULL};
    PyObject *node_obj;
    int node, logical = 0;
    const char *source = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|pz:pool_from_node", names, &node_obj,
                                     &logical, &source))
        return NULL;
    if (node_id_of(node_obj, &node) < 0)
        return NULL;
    pf_pool *pool = NULL;
    char *why = NULL;
    int rc;
    if (source) {
        rc = pool_from_source_node(source, node, logical, &pool, &why);
    } else {
        WITHOUT_GIL(rc = pf_pool_from_node(NULL, node, logical, &pool, &why));
    }
    if (rc < 0)
        return raise_pf(PyExc_ValueError, "CPUPool", rc, why);
    return pool_wrap(pool);
}

static PyObject *mod_pool_from_process(PyObject *module, PyObject *unused)
{
    (void)module, (void)unused;
    pf_pool *pool = NULL;
    char *why = NULL;
    int rc;
    WITHOUT_GIL(rc = pf_pool_from_process(&pool, &why));
    if (rc < 0)
        return raise_pf(PyExc_RuntimeError, "CPUPool", rc, why);
    return pool_wrap(pool);
}

/* ------------------------------------------------------------------------ */
/* Pinning                                                                   */

typedef struct {
    PyObject_HEAD pf_pin_state *state;
} PinStateObject;

static void pinstate_dealloc(PinStateObject *self)
{
    /* Forgotten without unpin(): undo it if this is the pinning thread (else
       pf_unpin refuses and the state is lost, which is all that can be done). */
    if (self->state)
        pf_unpin(self->state);
    PyObject_Free(self);
}

static PyObject *pinstate_unpin(PinStateObject *self, PyObject *unused)
{
    (void)unused;
    if (!self->state)
        Py_RETURN_NONE;
    int rc;
    WITHOUT_GIL(rc = pf_unpin(self->state));
    if (rc < 0) {
        return raise_pf(PyExc_RuntimeError, "unpin", rc,
                        rc == -EINVAL ? strdup("a pin must be undone by the thread that made it")
                                      : NULL);
    }
    self->state = NULL;
    Py_RETURN_NONE;
}

static PyMethodDef pinstate_methods[] = {
    {"unpin", (PyCFunction)pinstate_unpin, METH_NOARGS,
     "Restore what pin() replaced (masks, team size); the pinning thread only."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject PinStateType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "pinfer._pinfer.PinState",
    .tp_basicsize = sizeof(PinStateObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "What pin() replaced; unpin() puts it back.",
    .tp_dealloc = (destructor)pinstate_dealloc,
    .tp_methods = pinstate_methods,
};

static PyObject *mod_pin(PyObject *module, PyObject *pool_obj)
{
    (void)module;
    const pf_pool *pool = pool_arg(pool_obj);
    if (!pool)
        return NULL;
    PinStateObject *self = PyObject_New(PinStateObject, &PinStateType);
    if (!self)
        return NULL;
    self->state = NULL;
    char *why = NULL;
    int rc;
    WITHOUT_GIL(rc = pf_pin(pool, &self->state, &why));
    if (rc < 0) {
        Py_DECREF(self);
        return raise_pf(PyExc_RuntimeError, "pin", rc, why);
    }
    return (PyObject *)self;
}

/* ------------------------------------------------------------------------ */
/* Futures                                                                   */

typedef struct {
    PyObject_HEAD pf_future *future;
    PyObject *fn, *args, *kwargs; /* until the task has run */
    PyObject *result;
    saved_error error;
    int code;  /* the task's return code, once it ran */
    pid_t pid; /* the process that submitted it */
} FutureObject;

static void future_dealloc(FutureObject *self)
{
    /* The queue holds a reference until the task has run: by now it has (or this is a
       child made by fork(), where the future is the parent's). */
    if (!forked_since(self->pid))
        pf_future_free(self->future);
    Py_XDECREF(self->fn);
    Py_XDECREF(self->args);
    Py_XDECREF(self->kwargs);
    Py_XDECREF(self->result);
    clear_error(&self->error);
    PyObject_Free(self);
}

/* The task, on the worker: call the callable with the GIL, keep its result or exception. */
static int run_future(void *arg)
{
    FutureObject *self = arg;
    if (python_finalizing())
        return -ECANCELED;
    PyGILState_STATE gil = worker_enter();
    PyObject *result = PyObject_Call(self->fn, self->args, self->kwargs);
    if (result)
        self->result = result;
    else
        save_error(&self->error);
    self->code = result ? 0 : CALLABLE_RAISED;
    Py_CLEAR(self->fn);
    Py_CLEAR(self->args);
    Py_CLEAR(self->kwargs);
    int code = self->code;
    Py_DECREF(self); /* the queue's reference */
    worker_leave(gil);
    return code;
}

static PyObject *future_outcome(FutureObject *self, int code)
{
    if (self->error.type)
        return raise_saved(&self->error);
    if (self->result) {
        Py_INCREF(self->result);
        return self->result;
    }
    return raise_pf(PyExc_RuntimeError, "Future.get", code ? code : -ECANCELED,
                    strdup("the task did not run (the interpreter is shutting down)"));
}

/*
 * TimeoutError naming the timeout.  PyErr_Format knows no floating-point
 * conversion (a "%g" stays as it is), so the number is formatted first.
 */
static PyObject *timed_out(double timeout)
{
    char *text = PyOS_double_to_string(timeout, 'g', 6, 0, NULL);
    if (!text)
        return NULL;
    PyErr_Format(PyExc_TimeoutError, "the task has not finished within %s s", text);
    PyMem_Free(text);
    return NULL;
}

static PyObject *future_get(FutureObject *self, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"timeout", NULL};
    PyObject *timeout_obj = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:get", names, &timeout_obj))
        return NULL;
    if (forked_since(self->pid))
        return raise_forked("the Task of this future", self->pid);
    double timeout = -1;
    if (timeout_obj != Py_None) {
        timeout = PyFloat_AsDouble(timeout_obj);
        if (timeout == -1 && PyErr_Occurred())
            return NULL;
        if (timeout < 0)
            timeout = 0;
    }
    double waited_ms = 0;
    int code = 0, rc;
    /* Wait in slices, the GIL released, looking at signals in between. */
    for (;;) {
        int slice = WAIT_SLICE_MS;
        if (timeout >= 0 && timeout * 1000 - waited_ms < slice)
            slice = (int)(timeout * 1000 - waited_ms);
        WITHOUT_GIL(rc = pf_future_wait_timeout(self->future, slice, &code));
        if (rc != -ETIMEDOUT)
            break;
        waited_ms += slice;
        if (PyErr_CheckSignals() < 0)
            return NULL;
        if (timeout >= 0 && waited_ms >= timeout * 1000)
            return timed_out(timeout);
    }
    if (rc == -EDEADLK)
        return raise_pf(PyExc_RuntimeError, "Future.get", rc,
                        strdup("waiting, from the task's own worker, for a task queued behind "
                               "the running one would never end"));
    if (rc < 0)
        return raise_pf(PyExc_RuntimeError, "Future.get", rc, NULL);
    return future_outcome(self, code);
}

static PyObject *future_done(FutureObject *self, PyObject *unused)
{
    (void)unused;
    if (forked_since(self->pid))
        return raise_forked("the Task of this future", self->pid);
    return PyBool_FromLong(pf_future_poll(self->future));
}

static PyMethodDef future_methods[] = {
    {"get", (PyCFunction)(void (*)(void))future_get, METH_VARARGS | METH_KEYWORDS,
     "get(timeout=None): wait for the task (the GIL released) and return its result, or raise "
     "the exception it raised; TimeoutError after `timeout` seconds."},
    {"done", (PyCFunction)future_done, METH_NOARGS, "True once the task has run."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject FutureType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "pinfer._pinfer.Future",
    .tp_basicsize = sizeof(FutureObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The result of a task submitted to an Executor.",
    .tp_dealloc = (destructor)future_dealloc,
    .tp_methods = future_methods,
};

/* ------------------------------------------------------------------------ */
/* Executors                                                                 */

typedef struct {
    PyObject_HEAD pf_executor *executor;
    pid_t pid; /* the process that made it */
} ExecutorObject;

static PyObject *executor_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"pool", NULL};
    PyObject *pool_obj;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O:Executor", names, &pool_obj))
        return NULL;
    const pf_pool *pool = pool_arg(pool_obj);
    if (!pool)
        return NULL;
    ExecutorObject *self = (ExecutorObject *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    self->pid = getpid();
    char *why = NULL;
    int rc;
    WITHOUT_GIL(rc = pf_executor_create(pool, &self->executor, &why));
    if (rc < 0) {
        Py_DECREF(self);
        return raise_pf(PyExc_RuntimeError, "Executor", rc, why);
    }
    return (PyObject *)self;
}

/*
 * Drain and join (the GIL released: the queued tasks need it).  In a child
 * made by fork() only forget it: its worker is the parent's.
 */
static void executor_shutdown(ExecutorObject *self)
{
    pf_executor *ex = self->executor;
    self->executor = NULL;
    if (!ex || forked_since(self->pid))
        return;
    pf_executor_submit(ex, farewell, NULL, NULL);
    if (pf_executor_in_worker(ex)) {
        pf_executor_free(ex); /* returns at once; the worker finishes after this task */
        return;
    }
    WITHOUT_GIL(pf_executor_free(ex));
}

static void executor_dealloc(ExecutorObject *self)
{
    executor_shutdown(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *executor_submit(ExecutorObject *self, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"fn", "args", "kwargs", NULL};
    PyObject *fn, *call_args = NULL, *call_kwargs = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|OO:submit", names, &fn, &call_args,
                                     &call_kwargs))
        return NULL;
    if (self->executor && forked_since(self->pid))
        return raise_forked("this Task", self->pid);
    if (!self->executor)
        return raise_pf(PyExc_RuntimeError, "submit", -ECANCELED, strdup("the executor is closed"));
    if (!PyCallable_Check(fn))
        return PyErr_Format(PyExc_TypeError, "submit: %R is not callable", fn);
    if (call_kwargs != Py_None && !PyDict_Check(call_kwargs))
        return PyErr_Format(PyExc_TypeError, "submit: kwargs must be a dict or None");
    FutureObject *future = PyObject_New(FutureObject, &FutureType);
    if (!future)
        return NULL;
    future->future = NULL;
    future->result = NULL;
    future->error = (saved_error){NULL, NULL, NULL};
    future->code = 0;
    future->pid = self->pid;
    future->fn = fn;
    Py_INCREF(fn);
    /* The future's own copies: later submissions never see these arguments. */
    future->args = call_args ? PySequence_Tuple(call_args) : PyTuple_New(0);
    future->kwargs = call_kwargs == Py_None ? NULL : PyDict_Copy(call_kwargs);
    if (!future->args || (call_kwargs != Py_None && !future->kwargs)) {
        Py_DECREF(future);
        return NULL;
    }
    Py_INCREF(future); /* the queue's reference, dropped by run_future */
    int rc = pf_executor_submit(self->executor, run_future, future, &future->future);
    if (rc < 0) {
        Py_DECREF(future);
        Py_DECREF(future);
        return raise_pf(PyExc_RuntimeError, "submit", rc,
                        rc == -ECANCELED ? strdup("the executor is closing") : NULL);
    }
    return (PyObject *)future;
}

static PyObject *executor_close(ExecutorObject *self, PyObject *unused)
{
    (void)unused;
    executor_shutdown(self);
    Py_RETURN_NONE;
}

static PyObject *executor_cpus(ExecutorObject *self, void *closure)
{
    (void)closure;
    if (!self->executor)
        return raise_pf(PyExc_RuntimeError, "Executor", -ECANCELED,
                        strdup("the executor is closed"));
    size_t n;
    const int *cpus = pf_pool_cpus(pf_executor_pool(self->executor), &n);
    return int_list(cpus, n);
}

static PyObject *executor_closed(ExecutorObject *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(self->executor == NULL);
}

static PyObject *executor_in_worker(ExecutorObject *self, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(pf_executor_in_worker(self->executor));
}

static PyMethodDef executor_methods[] = {
    {"submit", (PyCFunction)(void (*)(void))executor_submit, METH_VARARGS | METH_KEYWORDS,
     "submit(fn, args=(), kwargs=None) -> Future: queue fn(*args, **kwargs) (FIFO)."},
    {"close", (PyCFunction)executor_close, METH_NOARGS,
     "Run what is queued, then stop the worker; idempotent."},
    {"in_worker", (PyCFunction)executor_in_worker, METH_NOARGS,
     "True when called from this executor's worker."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef executor_getset[] = {
    {"cpus", (getter)executor_cpus, NULL, "the CPUs of the worker's pool", NULL},
    {"closed", (getter)executor_closed, NULL, "True once close() was called", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject ExecutorType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "pinfer._pinfer.Executor",
    .tp_basicsize = sizeof(ExecutorObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Executor(pool): one worker thread pinned, with its OpenMP team, to the pool.",
    .tp_new = executor_new,
    .tp_dealloc = (destructor)executor_dealloc,
    .tp_methods = executor_methods,
    .tp_getset = executor_getset,
};

/* ------------------------------------------------------------------------ */
/* Streams                                                                   */

typedef struct {
    PyObject_HEAD pf_streams *streams;
    int running;  /* runs in progress, their GIL released (counted under the GIL) */
    bool closing; /* close() was called: no new run; the last run in progress frees */
    pid_t pid;    /* the process that made it */
} StreamsObject;

static PyObject *streams_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"pool", "count", NULL};
    PyObject *pool_obj;
    int count;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "Oi:Streams", names, &pool_obj, &count))
        return NULL;
    const pf_pool *pool = pool_arg(pool_obj);
    if (!pool)
        return NULL;
    StreamsObject *self = (StreamsObject *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    self->pid = getpid();
    char *why = NULL;
    int rc;
    WITHOUT_GIL(rc = pf_streams_create(pool, count, &self->streams, &why));
    if (rc < 0) {
        Py_DECREF(self);
        return raise_pf(PyExc_ValueError, "Streams", rc, why);
    }
    return (PyObject *)self;
}

/* true when called from one of the streams' own workers (a run would deadlock). */
static bool in_own_stream(pf_streams *s)
{
    return pf_streams_run(s, 0, farewell_chunk, NULL) == -EDEADLK;
}

/* Say farewell on every stream, then stop them (the GIL released: the farewells need it). */
static void streams_free_now(StreamsObject *self)
{
    pf_streams *s = self->streams;
    self->streams = NULL;
    WITHOUT_GIL(pf_streams_run(s, (size_t)pf_streams_count(s), farewell_chunk, NULL);
                pf_streams_free(s));
}

/*
 * Close: at once when no run is in progress, else when the last one ends
 * (another Python thread may be inside run() with the GIL released).  In a
 * child made by fork(), only forget the streams: their threads are the
 * parent's.
 */
static int streams_shutdown(StreamsObject *self)
{
    if (!self->streams || self->closing)
        return 0;
    if (forked_since(self->pid)) {
        self->streams = NULL;
        return 0;
    }
    if (in_own_stream(self->streams)) {
        PyErr_SetString(PyExc_RuntimeError,
                        "Streams.close: called from one of its own streams, which would "
                        "never end");
        return -1;
    }
    self->closing = true;
    if (self->running == 0)
        streams_free_now(self);
    return 0;
}

static void streams_dealloc(StreamsObject *self)
{
    /* A run holds a reference to the object: dealloc never happens inside one. */
    if (streams_shutdown(self) < 0)
        PyErr_WriteUnraisable((PyObject *)self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

typedef struct run_ctx {
    PyObject *fn;
    PyObject **results; /* [count] */
    saved_error *errors;
} run_ctx;

/* A chunk, on stream `stream`'s worker: fn(stream, begin, end) with the GIL. */
static int run_chunk(void *arg, int stream, size_t begin, size_t end)
{
    run_ctx *ctx = arg;
    if (python_finalizing())
        return -ECANCELED;
    PyGILState_STATE gil = worker_enter();
    PyObject *result =
        PyObject_CallFunction(ctx->fn, "inn", stream, (Py_ssize_t)begin, (Py_ssize_t)end);
    if (result)
        ctx->results[stream] = result;
    else
        save_error(&ctx->errors[stream]);
    worker_leave(gil);
    return result ? 0 : CALLABLE_RAISED;
}

/* The list of the streams' results, or the lowest-index stream's exception. */
static PyObject *gather(run_ctx *ctx, size_t active)
{
    PyObject *list = NULL;
    for (size_t i = 0; i < active; i++)
        if (ctx->errors[i].type) {
            raise_saved(&ctx->errors[i]);
            return NULL;
        }
    list = PyList_New((Py_ssize_t)active);
    if (!list)
        return NULL;
    for (size_t i = 0; i < active; i++) {
        PyList_SET_ITEM(list, (Py_ssize_t)i, ctx->results[i]);
        ctx->results[i] = NULL;
    }
    return list;
}

static PyObject *streams_run(StreamsObject *self, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"batch", "fn", NULL};
    Py_ssize_t batch;
    PyObject *fn;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "nO:run", names, &batch, &fn))
        return NULL;
    if (self->streams && forked_since(self->pid))
        return raise_forked("this MultiStreamModule", self->pid);
    if (!self->streams || self->closing)
        return raise_pf(PyExc_RuntimeError, "Streams.run", -ECANCELED,
                        strdup("the streams are closed"));
    if (batch < 0)
        return PyErr_Format(PyExc_ValueError, "Streams.run: batch %zd is negative", batch);
    if (!PyCallable_Check(fn))
        return PyErr_Format(PyExc_TypeError, "Streams.run: %R is not callable", fn);
    size_t count = (size_t)pf_streams_count(self->streams);
    size_t active = (size_t)batch < count ? (size_t)batch : count;
    run_ctx ctx = {fn, calloc(count, sizeof(PyObject *)), calloc(count, sizeof(saved_error))};
    PyObject *out = NULL;
    if (!ctx.results || !ctx.errors) {
        PyErr_NoMemory();
        goto done;
    }
    int rc;
    pf_streams *s = self->streams;
    self->running++;
    WITHOUT_GIL(rc = pf_streams_run(s, (size_t)batch, run_chunk, &ctx));
    self->running--;
    if (self->closing && self->running == 0)
        streams_free_now(self);
    if (rc < 0 && rc != CALLABLE_RAISED) {
        raise_pf(PyExc_RuntimeError, "Streams.run", rc,
                 rc == -EDEADLK ? strdup("called from one of its own streams") : NULL);
        goto done;
    }
    out = gather(&ctx, active);
done:
    for (size_t i = 0; ctx.results && ctx.errors && i < count; i++) {
        Py_XDECREF(ctx.results[i]);
        clear_error(&ctx.errors[i]);
    }
    free(ctx.results);
    free(ctx.errors);
    return out;
}

static PyObject *streams_close(StreamsObject *self, PyObject *unused)
{
    (void)unused;
    if (streams_shutdown(self) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *streams_pools(StreamsObject *self, void *closure)
{
    (void)closure;
    if (!self->streams)
        return raise_pf(PyExc_RuntimeError, "Streams", -ECANCELED,
                        strdup("the streams are closed"));
    int count = pf_streams_count(self->streams);
    PyObject *list = PyList_New(count);
    for (int i = 0; list && i < count; i++) {
        size_t n;
        const int *cpus = pf_pool_cpus(pf_streams_pool(self->streams, i), &n);
        PyObject *item = int_list(cpus, n);
        if (!item) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, i, item);
    }
    return list;
}

static PyObject *streams_count(StreamsObject *self, void *closure)
{
    (void)closure;
    return PyLong_FromLong(self->streams ? pf_streams_count(self->streams) : 0);
}

static PyMethodDef streams_methods[] = {
    {"run", (PyCFunction)(void (*)(void))streams_run, METH_VARARGS | METH_KEYWORDS,
     "run(batch, fn) -> list: cut range(batch) over the streams and call fn(stream, begin, end) "
     "on each non-empty chunk at once, on its stream; the results in stream order."},
    {"close", (PyCFunction)streams_close, METH_NOARGS, "Stop every stream; idempotent."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef streams_getset[] = {
    {"pools", (getter)streams_pools, NULL, "each stream's CPUs", NULL},
    {"count", (getter)streams_count, NULL, "the number of streams (0 once closed)", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject StreamsType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "pinfer._pinfer.Streams",
    .tp_basicsize = sizeof(StreamsObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Streams(pool, count): count executors over the pool cut in contiguous parts.",
    .tp_new = streams_new,
    .tp_dealloc = (destructor)streams_dealloc,
    .tp_methods = streams_methods,
    .tp_getset = streams_getset,
};

/* ------------------------------------------------------------------------ */
/* Topology and planning                                                     */

/* A document of the library (malloc'd JSON text) as a str; frees it. */
static PyObject *json_text(const char *what, int rc, char *doc, char *why)
{
    if (rc < 0) {
        free(doc);
        return raise_pf(PyExc_ValueError, what, rc, why);
    }
    PyObject *text = PyUnicode_FromString(doc);
    free(doc);
    return text;
}

/*
 * topology_json(source=None): the text of `pinfer topo --json`, written by
 * the library (pf_topology_to_json); pinfer/runtime.py parses it.
 */
static PyObject *mod_topology_json(PyObject *module, PyObject *args, PyObject *kwargs)
{
    (void)module;
    static char *names[] = {"source", NULL};
    topology_load load = {NULL, NULL, NULL, 0};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|z:topology_json", names, &load.source))
        return NULL;
    char *doc = NULL;
    int rc;
    WITHOUT_GIL(load_topology(&load);
                rc = load.rc < 0 ? 0 : pf_topology_to_json(load.topo, true, &doc);
                pf_topology_free(load.topo));
    if (load.rc < 0)
        return raise_pf(PyExc_ValueError, "topology", load.rc, load.why);
    return json_text("topology", rc, doc, NULL);
}

/*
 * A copy of the process's environment (NULL-terminated; pf_strv_free()),
 * taken with the GIL held: os.environ changes the environment with the GIL
 * held, so the planner can read this copy without it.
 */
static char **environ_copy(void)
{
    size_t n = 0;
    while (environ && environ[n])
        n++;
    char **copy = calloc(n + 1, sizeof *copy);
    for (size_t i = 0; copy && i < n; i++) {
        if (!(copy[i] = strdup(environ[i]))) {
            pf_strv_free(copy);
            return NULL;
        }
    }
    return copy;
}

typedef struct plan_job {
    topology_load load;
    pf_launch_request req;
    char *doc;
    char *why;
    int rc;
} plan_job;

/* Load the topology, make the launch spec, write its document (without the GIL). */
static void make_plan(plan_job *job)
{
    load_topology(&job->load);
    if ((job->rc = job->load.rc) < 0) {
        job->why = job->load.why;
        return;
    }
    job->req.topo = job->load.topo;
    pf_launch_spec *spec = NULL;
    job->rc = pf_launch_spec_create(&job->req, &spec, &job->why);
    if (job->rc == 0)
        job->rc = pf_launch_spec_to_json(spec, &job->doc);
    pf_launch_spec_free(spec);
    pf_topology_free(job->load.topo);
}

/*
 * plan_json(topology, cpu_quota, ninstances, ncores_per_instance, node_id,
 * nodes_list, core_list, use_logical_cores, use_e_cores, bind_numa_node,
 * scatter, latency_mode, throughput_mode, multi_instance, rank,
 * instance_idx, local_rank, local_world_size, socket_id): the text of `pinfer plan
 * --json` for a launch request with these plan options and everything else
 * as `pinfer plan` has it by default (pf_launch_spec_create,
 * pf_launch_spec_to_json).  pinfer/runtime.py maps the user's keywords to
 * these, already typed (cpu_quota: 0 for the topology's, as
 * pf_plan_options has it), and parses the text.
 */
static PyObject *mod_plan_json(PyObject *module, PyObject *args, PyObject *kwargs)
{
    (void)module;
    static char *names[] = {
        "topology",        "cpu_quota",        "ninstances", "ncores_per_instance",
        "node_id",         "nodes_list",       "core_list",  "use_logical_cores",
        "use_e_cores",     "bind_numa_node",   "scatter",    "latency_mode",
        "throughput_mode", "multi_instance",   "rank",       "instance_idx",
        "local_rank",      "local_world_size", "socket_id",  NULL};
    plan_job job = {.load = {NULL, NULL, NULL, 0}};
    pf_launch_request_init(&job.req);
    pf_plan_options *o = &job.req.plan;
    int logical = 0, ecores = 0, bind = 0, scatter = 0, latency = 0, throughput = 0, multi = 0;
    if (!PyArg_ParseTupleAndKeywords(
            args, kwargs, "|zdiiizzpppppppiziii:plan_json", names, &job.load.source, &o->cpu_quota,
            &o->ninstances, &o->ncores_per_instance, &o->node_id, &o->nodes_list, &o->core_list,
            &logical, &ecores, &bind, &scatter, &latency, &throughput, &multi, &o->rank,
            &o->instance_idx, &o->local_rank, &o->local_world_size, &o->socket_id))
        return NULL;
    o->use_logical_cores = logical;
    o->use_e_cores = ecores;
    o->bind_numa_node = bind;
    o->strategy = scatter ? PF_STRATEGY_SCATTER : PF_STRATEGY_CLOSE;
    o->latency_mode = latency;
    o->throughput_mode = throughput;
    o->multi_instance = multi;
    char **env = environ_copy();
    if (!env)
        return PyErr_NoMemory();
    job.req.environ = env;
    WITHOUT_GIL(make_plan(&job));
    pf_strv_free(env);
    return json_text("plan", job.rc, job.doc, job.why);
}

/* ------------------------------------------------------------------------ */
/* OpenMP and small helpers                                                  */

static PyObject *mod_split_range(PyObject *module, PyObject *args)
{
    (void)module;
    Py_ssize_t n, parts, i;
    if (!PyArg_ParseTuple(args, "nnn:split_range", &n, &parts, &i))
        return NULL;
    if (n < 0 || parts <= 0 || i < 0 || i >= parts)
        return PyErr_Format(PyExc_ValueError,
                            "split_range: need n >= 0, parts > 0 and 0 <= i < parts "
                            "(got %zd, %zd, %zd)",
                            n, parts, i);
    size_t begin, end;
    pf_split_range((size_t)n, (size_t)parts, (size_t)i, &begin, &end);
    return Py_BuildValue("nn", (Py_ssize_t)begin, (Py_ssize_t)end);
}

static PyObject *mod_omp_get_max_threads(PyObject *module, PyObject *unused)
{
    (void)module, (void)unused;
    return PyLong_FromLong(omp_get_max_threads());
}

static PyObject *mod_omp_set_num_threads(PyObject *module, PyObject *arg)
{
    (void)module;
    long n = PyLong_AsLong(arg);
    if (n == -1 && PyErr_Occurred())
        return NULL;
    if (n < 1 || n > PF_ID_LIMIT)
        return PyErr_Format(PyExc_ValueError, "omp_set_num_threads: %ld threads", n);
    omp_set_num_threads((int)n);
    Py_RETURN_NONE;
}

/* The file of the OpenMP runtime that serves omp_* calls (libgomp, libiomp5, ...). */
static PyObject *mod_omp_runtime(PyObject *module, PyObject *unused)
{
    (void)module, (void)unused;
    Dl_info info;
    void *fn = dlsym(RTLD_DEFAULT, "omp_get_max_threads");
    if (!fn || !dladdr(fn, &info) || !info.dli_fname)
        Py_RETURN_NONE;
    return PyUnicode_FromString(info.dli_fname);
}

/* The largest team team_threads() reports (a test helper). */
#define TEAM_MAX 64

typedef struct team_view {
    int size;
    pid_t tids[TEAM_MAX];
    cpu_set_t masks[TEAM_MAX];
} team_view;

static void look_at_team(team_view *v)
{
#pragma omp parallel
    {
        int t = omp_get_thread_num();
        if (t == 0)
            v->size = omp_get_num_threads();
        if (t < TEAM_MAX) {
            v->tids[t] = (pid_t)syscall(SYS_gettid);
            sched_getaffinity(0, sizeof v->masks[t], &v->masks[t]);
        }
    }
}

/*
 * [(tid, [cpus...]), ...] for each thread of a parallel region of the
 * calling thread's default team size, by team number: the team that torch's
 * OpenMP operators use when they run in this thread.
 */
static PyObject *mod_team_threads(PyObject *module, PyObject *unused)
{
    (void)module, (void)unused;
    team_view *v = calloc(1, sizeof *v);
    if (!v)
        return PyErr_NoMemory();
    WITHOUT_GIL(look_at_team(v));
    int size = v->size < TEAM_MAX ? v->size : TEAM_MAX;
    PyObject *list = PyList_New(size);
    for (int t = 0; list && t < size; t++) {
        int ids[CPU_SETSIZE];
        size_t n = 0;
        for (int c = 0; c < CPU_SETSIZE; c++)
            if (CPU_ISSET(c, &v->masks[t]))
                ids[n++] = c;
        PyObject *item = Py_BuildValue("(iN)", (int)v->tids[t], int_list(ids, n));
        if (!item) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, t, item);
    }
    free(v);
    return list;
}

/*
 * Re-binding a thread's OpenMP team in place, for pinfer.serve's workers
 * (python/pinfer/serve/pinning.py).  A memory policy (set_mempolicy) is a
 * property of each thread, not of the process, so the policy of a team can
 * only be changed from inside the team: one parallel region of the calling
 * thread's team size, in which thread t sets its own policy and, when asked,
 * binds itself to cpus[t % ncpus] (the CPUs a pool would refuse: those
 * outside the process's start-up mask).  The same threads run torch's
 * operators afterwards, as for pf_pin (docs/runtime.md).
 */
#define MPOL_DEFAULT_MODE 0 /* <linux/mempolicy.h>; libnuma's numaif.h is not needed */
#define MPOL_BIND_MODE 2

typedef struct team_binding {
    const int *cpus; /* NULL: affinity unchanged */
    size_t ncpus;
    int mode;              /* -1: memory policy unchanged */
    unsigned long *nodes;  /* the MPOL_BIND node mask */
    unsigned long maxnode; /* its size in bits, plus one (as libnuma passes it) */
    int size;              /* the team size that ran */
    int err;               /* the first errno of a thread, 0 */
} team_binding;

static int bind_self(const team_binding *b, int t)
{
    if (b->cpus) {
        int cpu = b->cpus[(size_t)t % b->ncpus];
        cpu_set_t *set = CPU_ALLOC(cpu + 1);
        if (!set)
            return ENOMEM;
        size_t bytes = CPU_ALLOC_SIZE(cpu + 1);
        CPU_ZERO_S(bytes, set);
        CPU_SET_S((size_t)cpu, bytes, set);
        int rc = sched_setaffinity(0, bytes, set);
        int err = errno;
        CPU_FREE(set);
        if (rc != 0)
            return err;
    }
    if (b->mode >= 0 && syscall(SYS_set_mempolicy, b->mode, b->nodes, b->maxnode) != 0)
        return errno;
    return 0;
}

static void bind_team(team_binding *b)
{
#pragma omp parallel
    {
        int t = omp_get_thread_num();
        if (t == 0)
            b->size = omp_get_num_threads();
        int err = bind_self(b, t);
        if (err) {
#pragma omp critical(pinfer_team_bind)
            if (!b->err)
                b->err = err;
        }
    }
}

/* The number of longs a node mask needs for the nodes of both lists (b may be NULL). */
static size_t mask_words(const int *a, size_t na, const int *b, size_t nb)
{
    size_t top = 0;
    for (size_t k = 0; k < na; k++)
        top = (size_t)a[k] > top ? (size_t)a[k] : top;
    for (size_t k = 0; b && k < nb; k++)
        top = (size_t)b[k] > top ? (size_t)b[k] : top;
    return top / (sizeof(unsigned long) * 8) + 1;
}

/* A node mask of `words` longs for set_mempolicy/migrate_pages; NULL when out of memory. */
static unsigned long *node_mask(const int *nodes, size_t n, size_t words)
{
    size_t bits = sizeof(unsigned long) * 8;
    unsigned long *mask = calloc(words, sizeof *mask);
    for (size_t k = 0; mask && k < n; k++)
        mask[(size_t)nodes[k] / bits] |= 1ul << ((size_t)nodes[k] % bits);
    return mask;
}

/* The maxnode argument for a mask of `words` longs: its bits plus one, as libnuma passes it. */
static unsigned long mask_maxnode(size_t words)
{
    return (unsigned long)(words * sizeof(unsigned long) * 8 + 1);
}

/*
 * team_bind(cpus=None, nodes=None) -> the team size: in one region of the
 * calling thread's team, each thread binds itself to one of `cpus` (None:
 * affinity unchanged) and sets its memory policy to MPOL_BIND over `nodes`
 * ([]: MPOL_DEFAULT; None: unchanged).  OSError with the first failing
 * thread's errno; the other threads have been changed all the same.
 */
static PyObject *mod_team_bind(PyObject *module, PyObject *args, PyObject *kwargs)
{
    (void)module;
    static char *names[] = {"cpus", "nodes", NULL};
    PyObject *cpus_obj = Py_None, *nodes_obj = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|OO:team_bind", names, &cpus_obj, &nodes_obj))
        return NULL;
    team_binding b = {.mode = -1};
    int *cpus = NULL, *nodes = NULL;
    size_t nnodes = 0;
    PyObject *result = NULL;
    if (cpus_obj != Py_None) {
        if (!(cpus = ints_of(cpus_obj, &b.ncpus, "team_bind: cpus")))
            goto done;
        if (b.ncpus == 0) {
            PyErr_SetString(PyExc_ValueError, "team_bind: no CPU");
            goto done;
        }
        b.cpus = cpus;
    }
    if (nodes_obj != Py_None) {
        if (!(nodes = ints_of(nodes_obj, &nnodes, "team_bind: nodes")))
            goto done;
        b.mode = nnodes ? MPOL_BIND_MODE : MPOL_DEFAULT_MODE;
        size_t words = mask_words(nodes, nnodes, NULL, 0);
        b.maxnode = mask_maxnode(words);
        if (nnodes && !(b.nodes = node_mask(nodes, nnodes, words))) {
            PyErr_NoMemory();
            goto done;
        }
    }
    WITHOUT_GIL(bind_team(&b));
    if (b.err) {
        errno = b.err;
        PyErr_SetFromErrno(PyExc_OSError);
    } else {
        result = PyLong_FromLong(b.size);
    }
done:
    free(cpus);
    free(nodes);
    free(b.nodes);
    return result;
}

/*
 * migrate_pages(old_nodes, new_nodes) -> pages that could not be moved: the
 * process's pages on `old_nodes` are moved to `new_nodes` (migrate_pages(2)).
 */
static PyObject *mod_migrate_pages(PyObject *module, PyObject *args)
{
    (void)module;
    PyObject *old_obj, *new_obj;
    if (!PyArg_ParseTuple(args, "OO:migrate_pages", &old_obj, &new_obj))
        return NULL;
    size_t nold = 0, nnew = 0;
    int *old_ids = NULL, *new_ids = NULL;
    unsigned long *old_mask = NULL, *new_mask = NULL;
    PyObject *result = NULL;
    if (!(old_ids = ints_of(old_obj, &nold, "migrate_pages: nodes")) ||
        !(new_ids = ints_of(new_obj, &nnew, "migrate_pages: nodes")))
        goto done;
    if (nold == 0 || nnew == 0) {
        result = PyLong_FromLong(0);
        goto done;
    }
    size_t words = mask_words(old_ids, nold, new_ids, nnew);
    if (!(old_mask = node_mask(old_ids, nold, words)) ||
        !(new_mask = node_mask(new_ids, nnew, words))) {
        PyErr_NoMemory();
        goto done;
    }
    long rc;
    int err = 0;
    WITHOUT_GIL(rc = syscall(SYS_migrate_pages, 0, mask_maxnode(words), old_mask, new_mask);
                err = errno);
    if (rc < 0) {
        errno = err;
        PyErr_SetFromErrno(PyExc_OSError);
    } else {
        result = PyLong_FromLong(rc);
    }
done:
    free(old_ids);
    free(new_ids);
    free(old_mask);
    free(new_mask);
    return result;
}

/* ------------------------------------------------------------------------ */
/* The module                                                                */

static PyMethodDef module_methods[] = {
    {"pool_from_list", mod_pool_from_list, METH_O,
     "pool_from_list(cpus) -> Pool: these CPUs in order, keeping those the process may use."},
    {"pool_from_node", (PyCFunction)(void (*)(void))mod_pool_from_node,
     METH_VARARGS | METH_KEYWORDS,
     "pool_from_node(node, logical=False, source=None) -> Pool: the node's physical cores (all "
     "its CPUs with logical), those the process may use; of the machine `source` describes "
     "(a topology source) when given."},
    {"pool_from_process", mod_pool_from_process, METH_NOARGS,
     "pool_from_process() -> Pool: every CPU the process may use (start-up mask and cgroup)."},
    {"pin", mod_pin, METH_O,
     "pin(pool) -> PinState: bind the calling thread and its OpenMP team to the pool."},
    {"topology_json", (PyCFunction)(void (*)(void))mod_topology_json, METH_VARARGS | METH_KEYWORDS,
     "topology_json(source=None) -> str: the text of `pinfer topo --json`."},
    {"plan_json", (PyCFunction)(void (*)(void))mod_plan_json, METH_VARARGS | METH_KEYWORDS,
     "plan_json(...) -> str: the text of `pinfer plan --json`."},
    {"split_range", mod_split_range, METH_VARARGS,
     "split_range(n, parts, i) -> (begin, end): part i of n items cut in contiguous parts."},
    {"omp_get_max_threads", mod_omp_get_max_threads, METH_NOARGS,
     "The calling thread's OpenMP team size."},
    {"omp_set_num_threads", mod_omp_set_num_threads, METH_O,
     "Set the calling thread's OpenMP team size."},
    {"omp_runtime", mod_omp_runtime, METH_NOARGS,
     "The file of the OpenMP runtime serving omp_* calls."},
    {"team_threads", mod_team_threads, METH_NOARGS,
     "[(tid, cpus)] of the calling thread's OpenMP team, by thread number."},
    {"team_bind", (PyCFunction)(void (*)(void))mod_team_bind, METH_VARARGS | METH_KEYWORDS,
     "team_bind(cpus=None, nodes=None) -> team size: each thread of the calling thread's OpenMP "
     "team binds itself to one of `cpus` and sets its memory policy to MPOL_BIND over `nodes` "
     "([]: the default policy; None: unchanged)."},
    {"migrate_pages", mod_migrate_pages, METH_VARARGS,
     "migrate_pages(old_nodes, new_nodes) -> pages not moved: move the process's pages."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "pinfer._pinfer",
    .m_doc = "libpinfer's runtime, topology and planner (see pinfer.runtime).",
    .m_size = -1,
    .m_methods = module_methods,
};

static int add_type(PyObject *module, PyTypeObject *type, const char *name)
{
    if (PyType_Ready(type) < 0)
        return -1;
    Py_INCREF(type);
    if (PyModule_AddObject(module, name, (PyObject *)type) < 0) {
        Py_DECREF(type);
        return -1;
    }
    return 0;
}

PyMODINIT_FUNC PyInit__pinfer(void)
{
    PyObject *module = PyModule_Create(&module_def);
    if (!module)
        return NULL;
    if (add_type(module, &PoolType, "Pool") < 0 ||
        add_type(module, &PinStateType, "PinState") < 0 ||
        add_type(module, &FutureType, "Future") < 0 ||
        add_type(module, &ExecutorType, "Executor") < 0 ||
        add_type(module, &StreamsType, "Streams") < 0 ||
        PyModule_AddStringConstant(module, "VERSION", PINFER_VERSION) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
