/*
 * test_serve_store.c - model files in the store (src/serve/store.c): a file
 * resolved inside the store, links and ".." leading out refused, the name
 * and version of an archive's manifest (a .mar zipped here with libzip, and
 * the unpacked layout), a bad manifest refused, and the models of "all".
 */
#include "pf_test.h"

#include "server/server.h"

#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

static char store[256];

static void write_file(const char *rel, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", store, rel);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void make_mar(const char *rel, const char *manifest)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", store, rel);
    int err = 0;
    zip_t *z = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &err);
    assert_non_null(z);
    zip_source_t *src = zip_source_buffer(z, manifest, strlen(manifest), 0);
    assert_true(zip_file_add(z, "MAR-INF/MANIFEST.json", src, ZIP_FL_ENC_UTF_8) >= 0);
    assert_int_equal(zip_close(z), 0);
}

static int setup(void **state)
{
    (void)state;
    snprintf(store, sizeof store, "/tmp/pf-store-XXXXXX");
    assert_non_null(mkdtemp(store));
    char *real = realpath(store, NULL);
    snprintf(store, sizeof store, "%s", real);
    free(real);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    pf__remove_tree(store);
    return 0;
}

static void test_resolve(void **state)
{
    (void)state;
    write_file("net.pt", "x");
    char *path = NULL, *why = NULL;
    assert_int_equal(pf__store_resolve(store, "./net.pt", &path, &why), 0);
    char want[600];
    snprintf(want, sizeof want, "%s/net.pt", store);
    assert_string_equal(path, want);
    free(path);
    assert_int_equal(pf__store_resolve(store, "missing.pt", &path, &why), -ENOENT);
    free(why);
    why = NULL;
    assert_int_equal(pf__store_resolve(store, "../etc/passwd", &path, &why), -EINVAL);
    free(why);
    why = NULL;
    assert_int_equal(pf__store_resolve(store, "/etc/passwd", &path, &why), -EINVAL);
    free(why);
    why = NULL;
    assert_int_equal(pf__store_resolve(store, "http://x/y.mar", &path, &why), -EINVAL);
    free(why);
    why = NULL;
    char link[600];
    snprintf(link, sizeof link, "%s/out.pt", store);
    assert_int_equal(symlink("/etc/hostname", link), 0);
    assert_int_equal(pf__store_resolve(store, "out.pt", &path, &why), -EINVAL);
    assert_non_null(strstr(why, "leads out of the model store"));
    free(why);
    why = NULL;
    assert_int_equal(pf__store_resolve(NULL, "net.pt", &path, &why), -EINVAL);
    free(why);
}

static void test_manifest(void **state)
{
    (void)state;
    make_mar("r.mar", "{\"model\": {\"modelName\": \"resnet\", \"modelVersion\": \"2.0\"}}");
    char path[600], *name = NULL, *version = NULL, *why = NULL;
    snprintf(path, sizeof path, "%s/r.mar", store);
    assert_int_equal(pf__store_manifest(path, &name, &version, &why), 0);
    assert_string_equal(name, "resnet");
    assert_string_equal(version, "2.0");
    free(name);
    free(version);
    /* The unpacked layout. */
    snprintf(path, sizeof path, "%s/unpacked", store);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof path, "%s/unpacked/MAR-INF", store);
    assert_int_equal(mkdir(path, 0700), 0);
    write_file("unpacked/MAR-INF/MANIFEST.json", "{\"model\": {\"modelName\": \"u\"}}");
    snprintf(path, sizeof path, "%s/unpacked", store);
    assert_int_equal(pf__store_manifest(path, &name, &version, &why), 0);
    assert_string_equal(name, "u");
    assert_null(version);
    free(name);
    /* A TorchScript file has no manifest: no name, no error. */
    write_file("plain.pt", "not a zip");
    snprintf(path, sizeof path, "%s/plain.pt", store);
    assert_int_equal(pf__store_manifest(path, &name, &version, &why), 0);
    assert_null(name);
    /* A manifest naming the model with a name no URL can carry. */
    make_mar("bad.mar", "{\"model\": {\"modelName\": \"../x\"}}");
    snprintf(path, sizeof path, "%s/bad.mar", store);
    assert_int_equal(pf__store_manifest(path, &name, &version, &why), -EINVAL);
    assert_non_null(why);
    free(why);
    why = NULL;
    make_mar("notjson.mar", "{model");
    snprintf(path, sizeof path, "%s/notjson.mar", store);
    assert_int_equal(pf__store_manifest(path, &name, &version, &why), -EINVAL);
    free(why);
}

static void test_list(void **state)
{
    (void)state;
    char **files = NULL, *why = NULL;
    size_t n = 0;
    assert_int_equal(pf__store_list(store, &files, &n, &why), 0);
    /* net.pt, plain.pt, r.mar, bad.mar, notjson.mar, unpacked, out.pt: every model file. */
    bool has_unpacked = false, has_r = false;
    for (size_t i = 0; i < n; i++) {
        has_unpacked |= strcmp(files[i], "unpacked") == 0;
        has_r |= strcmp(files[i], "r.mar") == 0;
        if (i)
            assert_true(strcmp(files[i - 1], files[i]) < 0);
    }
    assert_true(has_unpacked && has_r);
    pf_strv_free(files);
    assert_int_equal(pf__store_list("/nonexistent-store", &files, &n, &why), -ENOENT);
    free(why);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resolve),
        cmocka_unit_test(test_manifest),
        cmocka_unit_test(test_list),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
