/* heron.turn._mmsg: many UDP datagrams per system call, for the TURN relay path.
 *
 * A relayed packet costs heron one recvfrom and one sendto per hop, and Python's
 * socket methods add a frame, a parsed address and (for a drained socket) a raised
 * BlockingIOError to each. recvmmsg(2) reads everything queued on a socket in one
 * call, and sendmmsg(2) sends what one loop iteration queued for a socket in one
 * call, so the interpreter's share is paid per batch rather than per packet.
 *
 * Both functions keep the GIL: the socket is non-blocking, so a call never waits,
 * and the buffers below are then the module's alone. Addresses are heron's
 * (host, port) pairs; IPv6 scope ids follow Python's "%name" form.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define MAX_BATCH 64
#define MAX_BUFSIZE (1 << 17)

static struct mmsghdr messages[MAX_BATCH];
static struct iovec vectors[MAX_BATCH];
static struct sockaddr_storage names[MAX_BATCH];
static char *pool;
static size_t pool_size;

/* Errors that say the descriptor itself is wrong: raised, never taken for a lost datagram. */
static int
fatal(int error)
{
    return error == EBADF || error == ENOTSOCK || error == EFAULT || error == ENOMEM ||
           error == EINVAL || error == EOPNOTSUPP;
}

static PyObject *
address_tuple(const struct sockaddr_storage *name)
{
    char text[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
    unsigned int port;

    if (name->ss_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)name;
        inet_ntop(AF_INET, &v4->sin_addr, text, sizeof text);
        port = ntohs(v4->sin_port);
    }
    else if (name->ss_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)name;
        inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof text);
        if (v6->sin6_scope_id != 0) {
            char interface[IF_NAMESIZE];
            size_t used = strlen(text);
            if (if_indextoname(v6->sin6_scope_id, interface) != NULL)
                snprintf(text + used, sizeof text - used, "%%%s", interface);
            else
                snprintf(text + used, sizeof text - used, "%%%u", v6->sin6_scope_id);
        }
        port = ntohs(v6->sin6_port);
    }
    else {
        Py_RETURN_NONE;
    }
    return Py_BuildValue("(sI)", text, port);
}

static int
ensure_pool(size_t size)
{
    if (size <= pool_size)
        return 0;
    char *grown = realloc(pool, size); /* large: mmap'd, pages touched only as written */
    if (grown == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    pool = grown;
    pool_size = size;
    return 0;
}

PyDoc_STRVAR(recv_batch_doc,
"recv_batch(fd, max, bufsize) -> list of (bytes, (host, port))\n\n"
"Up to max (1-64) datagrams queued on the non-blocking UDP socket fd, by one recvmmsg;\n"
"[] when none is. A datagram longer than bufsize is discarded, never returned cut.\n"
"An error queued by ICMP is consumed and reading goes on; a bad fd raises OSError.");

static PyObject *
recv_batch(PyObject *Py_UNUSED(module), PyObject *args)
{
    int fd, max, bufsize, count = -1;

    if (!PyArg_ParseTuple(args, "iii:recv_batch", &fd, &max, &bufsize))
        return NULL;
    if (max < 1 || max > MAX_BATCH || bufsize < 1 || bufsize > MAX_BUFSIZE) {
        PyErr_Format(PyExc_ValueError, "max must be 1-%d and bufsize 1-%d", MAX_BATCH,
                     MAX_BUFSIZE);
        return NULL;
    }
    if (ensure_pool((size_t)max * (size_t)bufsize) < 0)
        return NULL;
    for (int i = 0; i < max; i++) {
        vectors[i].iov_base = pool + (size_t)i * (size_t)bufsize;
        vectors[i].iov_len = (size_t)bufsize;
        memset(&messages[i].msg_hdr, 0, sizeof messages[i].msg_hdr);
        messages[i].msg_hdr.msg_iov = &vectors[i];
        messages[i].msg_hdr.msg_iovlen = 1;
        messages[i].msg_hdr.msg_name = &names[i];
        messages[i].msg_hdr.msg_namelen = sizeof names[i];
    }
    /* Each failed call consumes one queued ICMP error; a bounded number of them. */
    for (int attempt = 0; attempt <= MAX_BATCH && count < 0; attempt++) {
        count = recvmmsg(fd, messages, (unsigned int)max, MSG_DONTWAIT, NULL);
        if (count >= 0)
            break;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return PyList_New(0);
        if (fatal(errno))
            return PyErr_SetFromErrno(PyExc_OSError);
        if (errno == EINTR && PyErr_CheckSignals() < 0)
            return NULL;
    }
    if (count < 0)
        return PyList_New(0);

    PyObject *batch = PyList_New(0);
    if (batch == NULL)
        return NULL;
    PyObject *address = NULL; /* the previous datagram's, reused for the same sender */
    int previous = -1;
    for (int i = 0; i < count; i++) {
        struct msghdr *header = &messages[i].msg_hdr;
        if (header->msg_flags & MSG_TRUNC)
            continue;
        if (previous < 0 || header->msg_namelen != messages[previous].msg_hdr.msg_namelen ||
            memcmp(&names[i], &names[previous], header->msg_namelen) != 0) {
            Py_XDECREF(address);
            address = address_tuple(&names[i]);
            if (address == NULL)
                goto failed;
        }
        previous = i;
        if (address == Py_None)
            continue;
        PyObject *data = PyBytes_FromStringAndSize(vectors[i].iov_base, messages[i].msg_len);
        if (data == NULL)
            goto failed;
        PyObject *item = PyTuple_Pack(2, data, address);
        Py_DECREF(data);
        if (item == NULL || PyList_Append(batch, item) < 0) {
            Py_XDECREF(item);
            goto failed;
        }
        Py_DECREF(item);
    }
    Py_XDECREF(address);
    return batch;

failed:
    Py_XDECREF(address);
    Py_DECREF(batch);
    return NULL;
}

/* The sockaddr for heron's (host, port); 0 when it is no numeric IPv4 or IPv6 address. */
static socklen_t
parse_address(PyObject *address, struct sockaddr_storage *name)
{
    if (!PyTuple_Check(address) || PyTuple_GET_SIZE(address) < 2)
        return 0;
    const char *host = PyUnicode_AsUTF8(PyTuple_GET_ITEM(address, 0));
    if (host == NULL) {
        PyErr_Clear();
        return 0;
    }
    long port = PyLong_AsLong(PyTuple_GET_ITEM(address, 1));
    if (port < 0 || port > 65535) {
        PyErr_Clear();
        return 0;
    }
    memset(name, 0, sizeof *name);
    struct sockaddr_in *v4 = (struct sockaddr_in *)name;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        return sizeof *v4;
    }
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)name;
    char bare[INET6_ADDRSTRLEN];
    const char *scope = strchr(host, '%');
    if (scope != NULL) {
        size_t length = (size_t)(scope - host);
        if (length >= sizeof bare)
            return 0;
        memcpy(bare, host, length);
        bare[length] = '\0';
        char *end;
        unsigned long index = strtoul(scope + 1, &end, 10);
        v6->sin6_scope_id = *end == '\0' && end != scope + 1 ? (uint32_t)index
                                                              : if_nametoindex(scope + 1);
        if (v6->sin6_scope_id == 0)
            return 0;
        host = bare;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) != 1)
        return 0;
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons((uint16_t)port);
    return sizeof *v6;
}

/* sendmmsg the first ``count`` of ``messages``; sets *full on EAGAIN/ENOBUFS, which drops
 * the rest. A message the kernel refuses on its own (no route, too big) is skipped. */
static int
send_prepared(int fd, int count, int *full)
{
    int sent = 0, at = 0;
    while (at < count) {
        int done = sendmmsg(fd, messages + at, (unsigned int)(count - at), MSG_DONTWAIT);
        if (done > 0) {
            sent += done;
            at += done;
        }
        else if (errno == EINTR) {
            if (PyErr_CheckSignals() < 0)
                return -1;
        }
        else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
            *full = 1;
            break;
        }
        else if (errno == EBADF || errno == ENOTSOCK || errno == EFAULT) {
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
        else {
            at++;
        }
    }
    return sent;
}

PyDoc_STRVAR(send_batch_doc,
"send_batch(fd, datagrams) -> int\n\n"
"Send a list of (bytes, (host, port)) on the non-blocking UDP socket fd by sendmmsg, in\n"
"order, and return how many the kernel took. A full buffer (EAGAIN, ENOBUFS) stops the\n"
"batch there; a datagram with an unusable address or that the kernel refuses alone (no\n"
"route, too big) is skipped. The caller counts the difference as lost. A bad fd raises.");

static PyObject *
send_batch(PyObject *Py_UNUSED(module), PyObject *args)
{
    int fd;
    PyObject *datagrams;

    if (!PyArg_ParseTuple(args, "iO!:send_batch", &fd, &PyList_Type, &datagrams))
        return NULL;
    Py_ssize_t total = PyList_GET_SIZE(datagrams);
    long sent = 0;
    int full = 0, count = 0;
    PyObject *last_address = NULL;
    struct sockaddr_storage *last_name = NULL;
    socklen_t last_length = 0;

    for (Py_ssize_t i = 0; i < total && !full; i++) {
        PyObject *item = PyList_GET_ITEM(datagrams, i);
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2 ||
            !PyBytes_Check(PyTuple_GET_ITEM(item, 0))) {
            PyErr_SetString(PyExc_TypeError, "datagrams must be (bytes, (host, port)) tuples");
            return NULL;
        }
        PyObject *data = PyTuple_GET_ITEM(item, 0), *address = PyTuple_GET_ITEM(item, 1);
        if (address != last_address) { /* a relay sends to one peer: parse it once */
            last_length = parse_address(address, &names[count]);
            last_name = &names[count];
            last_address = address;
        }
        if (last_length == 0)
            continue; /* not sent: the caller's difference counts it */
        vectors[count].iov_base = PyBytes_AS_STRING(data);
        vectors[count].iov_len = (size_t)PyBytes_GET_SIZE(data);
        memset(&messages[count], 0, sizeof messages[count]);
        messages[count].msg_hdr.msg_iov = &vectors[count];
        messages[count].msg_hdr.msg_iovlen = 1;
        messages[count].msg_hdr.msg_name = last_name;
        messages[count].msg_hdr.msg_namelen = last_length;
        if (++count == MAX_BATCH || i == total - 1) {
            int done = send_prepared(fd, count, &full);
            if (done < 0)
                return NULL;
            sent += done;
            count = 0;
            last_address = NULL; /* names[] is reused from the start */
        }
    }
    if (count > 0 && !full) {
        int done = send_prepared(fd, count, &full);
        if (done < 0)
            return NULL;
        sent += done;
    }
    return PyLong_FromLong(sent);
}

static PyMethodDef methods[] = {
    {"recv_batch", recv_batch, METH_VARARGS, recv_batch_doc},
    {"send_batch", send_batch, METH_VARARGS, send_batch_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "heron.turn._mmsg",
    .m_doc = "recvmmsg/sendmmsg for the TURN relay path: many datagrams per system call.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__mmsg(void)
{
    PyObject *created = PyModule_Create(&module);
    if (created != NULL && PyModule_AddIntConstant(created, "MAX_BATCH", MAX_BATCH) < 0) {
        Py_DECREF(created);
        return NULL;
    }
    return created;
}
