/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The command line, declared once: each command has a table of options,
 * in the style of xdp-tools' DEFINE_OPTION, and the same table drives
 * getopt_long, the command's --help and its error messages.
 *
 *	static const struct cli_opt opts[] = {
 *		CLI_OPTION("pool-size", CLI_UINT, struct run_cli, o.pool_size,
 *			   .arg = "N", .min = 1, .max = 16,
 *			   .help = "idle connections per backend (default 8)"),
 *		CLI_END,
 *	};
 *
 * Every command also takes -h, --help. Errors name the command and the
 * option: "h2lb run: --pool-size: '0' is not a number in 1-16".
 */
#ifndef H2LB_CLI_H
#define H2LB_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct json_writer;

enum cli_type {
	CLI_FLAG, /* bool = true */
	CLI_STR,  /* const char * = the argument */
	CLI_UINT, /* integer in [.min, .max] */
	CLI_SIZE, /* bytes in [.min, .max]; K or M suffix: KiB, MiB */
	CLI_ENUM, /* int = the .val of the matching .words entry */
	CLI_ADDR, /* struct sockaddr_in from A.B.C.D:PORT */
	CLI_FUNC, /* .set does it */
};

struct cli_word {
	const char *name;
	int val;
};

struct cli_opt {
	const char *name; /* long name, without "--" */
	char short_opt;	  /* 0: none */
	const char *arg;  /* its argument in --help; NULL: takes none */
	const char *help; /* '\n' starts a continuation line */
	enum cli_type type;
	size_t off, size; /* the field it sets in the command's config */
	long min, max;	  /* CLI_UINT, CLI_SIZE */
	const struct cli_word *words; /* CLI_ENUM; ends with { NULL } */
	/* CLI_FUNC: 0, or -1 after cli_opt_err() */
	int (*set)(const struct cli_opt *opt, const char *arg, void *cfg);
};

/* An option that sets @field of @cfg_type. */
#define CLI_OPTION(_name, _type, _cfg_type, _field, ...)                       \
	{                                                                      \
		.name = (_name), .type = (_type),                              \
		.off = offsetof(_cfg_type, _field),                            \
		.size = sizeof(((_cfg_type *)0)->_field), __VA_ARGS__          \
	}
/* An option whose @set function does the work. */
#define CLI_FUNC_OPTION(_name, _set, ...)                                      \
	{                                                                      \
		.name = (_name), .type = CLI_FUNC, .set = (_set), __VA_ARGS__  \
	}
/* -j, --json and -p, --pretty: JSON output, errors included. */
#define CLI_JSON_OPTIONS                                                       \
	CLI_FUNC_OPTION("json", cli_set_json, .short_opt = 'j',                \
			.help = "JSON output"),                                \
		CLI_FUNC_OPTION("pretty", cli_set_json, .short_opt = 'p',      \
				.help = "indented JSON output")
#define H2LB_DEFAULT_PIN_DIR "/sys/fs/bpf/h2lb"

/* --pin-dir DIR, into @_field of @_cfg_type (every command that reads or
 * makes the pins). */
#define CLI_PIN_DIR_OPTION(_cfg_type, _field)                                      \
	CLI_OPTION(                                                                \
		"pin-dir", CLI_STR, _cfg_type, _field, .arg = "DIR",               \
		.help = "where the maps are pinned (default " H2LB_DEFAULT_PIN_DIR \
			")")
#define CLI_END                                                                \
	{                                                                      \
		.name = NULL                                                   \
	}

struct cli_cmd {
	/* What follows "h2lb CMD" in its synopsis; one line per form. */
	const char *usage;
	const char *doc; /* a paragraph under the synopsis, or NULL */
	const struct cli_opt *opts;
};

/*
 * Parse @argv (@argv[0]: the command's name) into @cfg. Returns 0, or 2
 * after a mistake, which it reported. -h, --help prints the command's
 * help and exits 0.
 */
int cli_parse(const struct cli_cmd *cmd, int argc, char **argv, void *cfg);
void cli_usage(const struct cli_cmd *cmd, const char *name, FILE *f);

/* CLI_FUNC setter of CLI_JSON_OPTIONS. */
int cli_set_json(const struct cli_opt *opt, const char *arg, void *cfg);
/* With -j or -p: @w, ready to write to stdout; else NULL. */
struct json_writer *cli_json_writer(struct json_writer *w);

/* For CLI_FUNC setters: @arg as a number or size, checked against the
 * option's .min and .max; -1 after reporting the mistake. */
int cli_parse_uint(const struct cli_opt *opt, const char *arg, long *out);
int cli_parse_size(const struct cli_opt *opt, const char *arg, long *out);

/*
 * Errors: "h2lb CMD: MESSAGE" on stderr; with -j or -p, the command's
 * first error is kept for cli_exit(). cli_opt_err() puts "--NAME: "
 * before the message.
 */
void cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cli_opt_err(const struct cli_opt *opt, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* A command's end, with exit status @rc: with -j or -p, a failure prints
 * {"error": "MESSAGE"} on stdout (one object). Returns @rc. */
int cli_exit(int rc);

#endif
