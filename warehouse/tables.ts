// The warehouse's relations, shared by the component's grants and the status command (which
// must not load the Pulumi SDK to read them).

/**
 * Warehouse relations by who may touch them; a test keeps this in step with the migrations.
 * Loaders only insert into staging: the SECURITY DEFINER triggers build the star schema.
 */
export const warehouseTables = {
    staging: ["event", "data"],
    star: ["location", "datetime", "weather_data", "soil", "landslide_event"],
    statistics: ["event_stats_country_year", "precipitation_stats_country_year"],
    views: ["landslide_event_country_year", "landslide_precipitation_country_year"],
};

/** Every table, not the views over them: what the monitoring role counts. */
export const countedTables = [...warehouseTables.staging, ...warehouseTables.star, ...warehouseTables.statistics];
