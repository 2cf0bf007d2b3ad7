# Glue for Debian's system packages; nothing is vendored. Included from the top level so that the
# imported targets are visible everywhere.
find_package(Vulkan REQUIRED)  # headers only: functions come through volk
find_package(nlohmann_json 3 REQUIRED)
find_package(CLI11 REQUIRED)
find_package(Threads REQUIRED)

# libvulkan-volk-dev ships volk.c as a source file in /usr/include, not a library.
find_file(VOLK_SOURCE volk.c PATHS ${Vulkan_INCLUDE_DIRS} /usr/include REQUIRED)
add_library(volk STATIC ${VOLK_SOURCE})
target_include_directories(volk PUBLIC ${Vulkan_INCLUDE_DIRS})
target_compile_definitions(volk PUBLIC VK_NO_PROTOTYPES)
target_link_libraries(volk PUBLIC ${CMAKE_DL_LIBS})
set_target_properties(volk PROPERTIES POSITION_INDEPENDENT_CODE ON)
target_compile_options(volk PRIVATE -w)
