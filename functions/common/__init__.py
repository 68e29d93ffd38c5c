"""Pure code shared by every clickagg Lambda and the local stack: config, click record, keys."""
